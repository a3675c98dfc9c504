"""Scaling laws on toy models, trained live: how loss falls with model size, how to split a
compute budget between parameters and tokens, when bigger stops helping, and how to keep most
of a model's quality in fewer parameters (pruning, distillation).

Every training run goes through engine.loop.train (the one loop). A sweep of several models is
ONE job that trains them in turn, so a session stays within its two job slots; `_Part` tags each
model's records and keeps the job's step and clock moving forward across models.

Sources of every published figure used here:
  Kaplan et al. 2020, Scaling Laws for Neural Language Models, arXiv:2001.08361
  Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, arXiv:2203.15556
  Muennighoff et al. 2023, Scaling Data-Constrained Language Models, arXiv:2305.16264
  Hinton, Vinyals & Dean 2015, Distilling the Knowledge in a Neural Network, arXiv:1503.02531
  Sanh et al. 2019, DistilBERT, a distilled version of BERT, arXiv:1910.01108
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils import prune

from . import limits, runs
from .config import StageConfig, UserError, field
from .loop import LoopSettings, train
from .models import build_model
from .pretrain import PretrainConfig, load_text, prepare, windows

# --- what the literature measured -------------------------------------------------------------
KAPLAN_ALPHA_N = 0.076        # L(N) = (N_c / N)^alpha_N, non-embedding N (Kaplan 2020, eq. 1.1)
KAPLAN_N_OPT = (1.3e9, 0.73)  # N_opt = 1.3e9 * C^0.73, C in PF-days (Kaplan 2020, figure 14)
PF_DAY = 8.64e19              # FLOPs in a petaflop/s-day
# L(N, D) = E + A/N^alpha + B/D^beta, fitted by Hoffmann 2022 (Approach 3, section 3.3; eq. 10, appendix D.2).
CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
CHINCHILLA_RANGE = (6e18, 3e21)  # the isoFLOP budgets Hoffmann 2022 measured (figure 3)
CHINCHILLA_TOKENS_PER_PARAM = 20  # Hoffmann 2022, Approaches 1 and 2 (table 3): about 20 tokens/parameter
MUENNIGHOFF_EPOCHS = 4        # repeated data up to ~4 epochs is almost as good as new (Muennighoff 2023)
DISTILBERT = {"smaller": 0.40, "faster": 0.60, "glue_kept": 0.97}  # Sanh et al. 2019, abstract

HEAD_DIM = 16                 # heads = width / 16, so shape changes only in L and d ...
WIDTHS = (8, *range(16, 257, 16))  # ... except the one 8-wide head of the tiniest models
MIN_STEPS = 20                # fewer optimizer steps than this do not train a model at all
DISTILL_BATCH = 16
SPARSITIES = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def kaplan_lr(n: float) -> float:
    """Peak learning rate by size: LR(N) = 0.003239 - 0.0001395 ln N (Kaplan 2020, eq. D.1):
    smaller models take larger steps. As published it gave the straightest log-log line here
    (bench/bench_scaling.py); twice it gave lower losses but a bumpier curve."""
    return 0.003239 - 0.0001395 * math.log(n)


# --- parameters and FLOPs -----------------------------------------------------------------------

def non_embedding(n_layer: int, n_embd: int) -> int:
    """Kaplan's N ≈ 12·L·d²: attention 4d² (q, k, v, out) plus MLP 8d² (d → 4d → d) per layer."""
    return 12 * n_layer * n_embd ** 2


def param_counts(arch: str, n_layer: int, n_embd: int, vocab: int, block: int) -> dict:
    """Exact counts of build_model's models, without building them: total (what
    `model.num_parameters()` says), non-embedding (Kaplan's N) and the 12·L·d² estimate."""
    d = n_embd
    if arch == "llama":  # no biases; two RMSNorms a layer; SwiGLU's three matrices at 8d/3; RoPE has no weights
        per_layer, embed, final = 4 * d * d + 3 * d * int(8 * d / 3) + 2 * d, vocab * d, d
    else:                # GPT-2: biases and two LayerNorms a layer; learned positions; tied output
        per_layer, embed, final = 12 * d * d + 13 * d, (vocab + block) * d, 2 * d
    body = n_layer * per_layer + final
    return {"total": body + embed, "non_embedding": body, "estimate": non_embedding(n_layer, n_embd)}


def train_flops(n: float, tokens: float) -> float:
    """C ≈ 6·N·D: 2 FLOPs a parameter a token forward, 4 backward (Kaplan 2020, section 2.1).
    It leaves out attention over the context, T/(12d) of it: under a fifth at our shapes."""
    return 6 * n * tokens


@dataclasses.dataclass
class Spec:
    """One model of a sweep and what training it costs."""
    n_layer: int
    n_embd: int
    steps: int
    lr: float
    tokens: int
    counts: dict

    @property
    def n_head(self) -> int:
        return max(1, self.n_embd // HEAD_DIM)

    @property
    def n(self) -> int:
        return self.counts["non_embedding"]

    @property
    def label(self) -> str:
        return human(self.n)

    @property
    def flops(self) -> float:
        return train_flops(self.n, self.tokens)

    def row(self) -> dict:
        return {"model": self.label, "layers": self.n_layer, "width": self.n_embd, "heads": self.n_head,
                "N = 12·L·d²": self.counts["estimate"], "N (non-embedding)": self.n,
                "total parameters": self.counts["total"], "tokens D": self.tokens, "steps": self.steps,
                "FLOPs 6·N·D": self.flops, "peak lr": self.lr}


def human(n: float) -> str:
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.0f}"


def shape_for(target: float) -> tuple[int, int]:
    """Layers and width whose 12·L·d² is nearest `target`, keeping width/layers near 32:
    Kaplan (2020, figure 5) found loss depends on shape only weakly at a fixed N."""
    def cost(ld):
        L, d = ld
        return abs(math.log(non_embedding(L, d) / target)) + 0.25 * abs(math.log(d / L / 32))
    return min(((L, d) for L in range(1, 9) for d in WIDTHS), key=cost)


def ladder(lo: float, hi: float, count: int) -> list[tuple[int, int]]:
    """`count` shapes spread evenly in log N from lo to hi, duplicates dropped."""
    shapes = []
    for t in np.geomspace(lo, hi, count) if count > 1 else [lo]:
        s = shape_for(float(t))
        if s not in shapes:
            shapes.append(s)
    return sorted(shapes, key=lambda s: non_embedding(*s))


# --- fits ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class PowerLawFit:
    E: float
    A: float
    alpha: float
    alpha_std: float          # bootstrap standard deviation of alpha
    alpha_range: tuple        # 16th to 84th percentile of the bootstrap: a 68% interval
    floor: bool               # E fitted (Chinchilla's form) or fixed at 0 (Kaplan's L(N) = (N_c/N)^alpha_N)
    rms: float                # root-mean-square residual in ln L

    def predict(self, n):
        return self.E + self.A * np.asarray(n, float) ** -self.alpha


def _best_fit(x: np.ndarray, logl: np.ndarray, floor: bool) -> tuple[float, float, float, float]:
    """For a grid of floors E, fit ln(L - E) = ln A - alpha ln N by least squares (a line in
    log space) and keep the E whose curve fits ln L best; a second, finer grid refines E.
    Without a floor it is one straight-line fit in log-log space."""
    L = np.exp(logl)

    def scan(grid):
        y = np.log(np.clip(L[None, :] - grid[:, None], 1e-12, None))
        xm, ym = x.mean(), y.mean(1, keepdims=True)
        slope = ((x - xm) * (y - ym)).sum(1) / ((x - xm) ** 2).sum()
        icpt = ym[:, 0] - slope * xm
        sse = ((logl[None, :] - np.log(grid[:, None] + np.exp(icpt[:, None] + slope[:, None] * x))) ** 2).sum(1)
        i = int(np.argmin(sse))
        return i, float(grid[i]), math.exp(icpt[i]), float(-slope[i]), float(sse[i])

    if not floor:
        return scan(np.zeros(1))[1:]
    top = 0.995 * L.min()
    coarse = np.linspace(0.0, top, 200)
    i = scan(coarse)[0]
    step = coarse[1] - coarse[0]
    return scan(np.linspace(max(0.0, coarse[i] - step), min(top, coarse[i] + step), 101))[1:]


def fit_power_law(n, loss, floor: bool = True, n_boot: int = 300, seed: int = 0) -> PowerLawFit:
    """Fit L(N) = E + A/N^alpha (E = 0 when not `floor`). The exponent's uncertainty comes from
    a residual bootstrap: resample the residuals (in ln L) onto the fitted curve and refit.
    With a floor, E and alpha trade off when the points barely bend, and the interval says so."""
    n, loss = np.asarray(n, float), np.asarray(loss, float)
    ok = np.isfinite(loss) & (loss > 0)
    n, loss = n[ok], loss[ok]
    sizes = len(np.unique(n))
    need = 4 if floor else 3  # one point more than the parameters, so something is left to judge the fit
    if sizes < need:
        raise UserError(f"A power law {'with a floor ' if floor else ''}needs at least {need} model sizes to fit; "
                        f"{'there is' if sizes == 1 else 'there are'} {sizes}. Let more models finish, or sweep "
                        "more sizes.")
    x, logl = np.log(n), np.log(loss)
    E, A, alpha, sse = _best_fit(x, logl, floor)
    fitted = np.log(E + A * n ** -alpha)
    resid = logl - fitted
    rng = np.random.default_rng(seed)
    boots = np.array([_best_fit(x, fitted + rng.choice(resid, len(resid)), floor)[2] for _ in range(n_boot)])
    return PowerLawFit(E, A, alpha, float(boots.std()), tuple(float(q) for q in np.percentile(boots, [16, 84])),
                       floor, math.sqrt(sse / len(n)))


def parabola_min(n, loss) -> dict | None:
    """The bottom of an isoFLOP curve: fit L = a·(ln N)² + b·ln N + c (Hoffmann 2022, Approach 2).
    None when the points do not curve upward (no minimum to find)."""
    n, loss = np.asarray(n, float), np.asarray(loss, float)
    if len(np.unique(n)) < 3:
        return None
    a, b, c = np.polyfit(np.log(n), loss, 2)
    if a <= 0:
        return None
    x = -b / (2 * a)
    return {"n_opt": math.exp(x), "loss": c - b * b / (4 * a), "coef": (a, b, c),
            "inside": bool(np.log(n).min() <= x <= np.log(n).max())}


def chinchilla_optimal(c: float) -> dict:
    """Minimise E + A/N^alpha + B/D^beta subject to 6ND = C (Hoffmann 2022, eq. 4):
    N_opt = G·(C/6)^(beta/(alpha+beta)), D_opt = (C/6)/N_opt, G = (alpha·A / (beta·B))^(1/(alpha+beta))."""
    if not c > 0:
        raise UserError("The compute budget must be a positive number of FLOPs.")
    E, A, B, a, b = (CHINCHILLA[k] for k in ("E", "A", "B", "alpha", "beta"))
    g = (a * A / (b * B)) ** (1 / (a + b))
    n = g * (c / 6) ** (b / (a + b))
    d = c / (6 * n)
    return {"n": n, "d": d, "loss": E + A / n ** a + B / d ** b, "tokens_per_param": d / n}


def kaplan_optimal(c: float) -> dict:
    """Kaplan 2020's allocation: N_opt = 1.3e9·(C / PF-day)^0.73, the rest of C spent on tokens."""
    if not c > 0:
        raise UserError("The compute budget must be a positive number of FLOPs.")
    k, p = KAPLAN_N_OPT
    n = k * (c / PF_DAY) ** p
    return {"n": n, "d": c / (6 * n), "tokens_per_param": c / (6 * n * n)}


# --- configs: one per section; ScalingConfig joins them into the page's one URL ------------------

@dataclasses.dataclass
class Common(StageConfig):
    corpus: str = field("python-docs", "text every model learns, one character per token",
                        choices=("python-docs", "world"))
    block_size: int = field(64, "context length in characters", range=(16, 256))
    batch_size: int = field(16, "sequences per step", range=(1, 128))
    lr_scale: float = field(1.0, "multiplies Kaplan's learning rate by size, LR(N)", range=(0.1, 10.0))
    seed: int = field(0, "random seed: same seed, same curves")


@dataclasses.dataclass
class SweepConfig(Common):
    arch: str = field("gpt2", "gpt2, llama (RoPE, RMSNorm, SwiGLU) or both side by side",
                      choices=("gpt2", "llama", "both"))
    n_models: int = field(5, "how many sizes", range=(1, 6))
    min_params: int = field(20_000, "smallest non-embedding size", range=(500, limits.MAX_PARAMS))
    max_params: int = field(2_000_000, "largest non-embedding size", range=(500, limits.MAX_PARAMS))
    tokens: int = field(300_000, "training tokens for every model", range=(1_000, 20_000_000))

    def archs(self) -> list["SweepConfig"]:
        return [self.replace(arch="gpt2"), self.replace(arch="llama")] if self.arch == "both" else [self]


@dataclasses.dataclass
class IsoConfig(Common):
    budgets: str = field("1e10,3e10", "compute budgets in FLOPs, comma-separated (C ≈ 6·N·D)")
    iso_models: int = field(5, "sizes per budget", range=(3, 7))
    iso_min: int = field(700, "smallest size", range=(500, limits.MAX_PARAMS))
    iso_max: int = field(50_000, "largest size", range=(500, limits.MAX_PARAMS))

    def budget_list(self) -> list[float]:
        try:
            out = sorted({float(b) for b in self.budgets.replace(";", ",").split(",") if b.strip()})
        except ValueError:
            raise UserError(f"Budgets {self.budgets!r} are not numbers: write them like 3e10,1e11.") from None
        if not out or any(not (b > 0 and math.isfinite(b)) for b in out):
            raise UserError("Give one to three positive compute budgets, like 3e10,1e11.")
        if len(out) > 3:
            raise UserError(f"{len(out)} budgets would not finish in the time limit: pick at most three.")
        return out


@dataclasses.dataclass
class OverfitConfig(Common):
    of_chars: int = field(10_000, "characters of training text, repeated epoch after epoch", range=(2_000, 200_000))
    of_epochs: int = field(40, "passes over that text", range=(1, 500))
    of_small: int = field(5_000, "the small model's size", range=(500, limits.MAX_PARAMS))
    of_large: int = field(800_000, "the large model's size", range=(500, limits.MAX_PARAMS))
    # Twice Kaplan's rate: memorising within a minute's training needs large steps (1x only flattens out).
    of_lr_scale: float = field(2.0, "multiplies Kaplan's learning rate by size for these two", range=(0.1, 10.0))


@dataclasses.dataclass
class PruneConfig(StageConfig):
    prune_run: str = field("pretrain-base-gpt", "the trained model to prune (a run folder's name)")


@dataclasses.dataclass
class DistillConfig(StageConfig):
    teacher: str = field("", "the teacher: a run folder's name, or empty to train one on Python's docs first")
    teacher_steps: int = field(500, "steps for a new teacher (when none is picked)", range=(20, 5_000))
    st_layers: int = field(2, "student layers", range=(1, 8))
    st_width: int = field(32, "student width", range=(16, 256))
    st_steps: int = field(300, "training steps for each student", range=(10, 20_000))
    st_lr: float = field(3e-3, "student peak learning rate", range=(1e-5, 0.1))
    temperature: float = field(1.0, "softens both distributions before matching them (Hinton 2015)",
                               range=(0.5, 20.0))
    alpha: float = field(0.9, "weight of the teacher's soft targets against the true next token", range=(0.0, 1.0))
    seed: int = field(0, "random seed: same seed, same curves")


@dataclasses.dataclass
class CalcConfig(StageConfig):
    flops: float = field(5.76e23, "training compute budget in FLOPs", range=(1.0, 1e30))


@dataclasses.dataclass
class ScalingConfig(SweepConfig, IsoConfig, OverfitConfig, PruneConfig, DistillConfig, CalcConfig):
    """The Model scaling page: every section's settings in one link."""
    PRESETS = {"quick demo": dict(n_models=4, min_params=20_000, max_params=500_000, tokens=150_000),
               "standard": dict(n_models=5, min_params=20_000, max_params=2_000_000, tokens=300_000),
               "thorough": dict(n_models=6, min_params=20_000, max_params=4_000_000, tokens=600_000)}
    PRESET_NOTES = {"quick demo": "4 sizes up to 500k parameters on 150k tokens each",
                    "standard": "5 sizes up to 2M parameters on 300k tokens each",
                    "thorough": "6 sizes up to 4M parameters on 600k tokens each: a longer law"}

    def part(self, cls: type[StageConfig]) -> StageConfig:
        return cls.from_dict(self.to_dict())


# --- plans ----------------------------------------------------------------------------------------

def _spec(arch: str, L: int, d: int, tokens: int, c: Common, vocab: int) -> Spec:
    steps = max(1, round(tokens / (c.batch_size * c.block_size)))
    counts = param_counts(arch, L, d, vocab, c.block_size)
    if counts["total"] > limits.MAX_PARAMS:
        raise UserError(f"A model of {counts['total'] / 1e6:.1f}M parameters is too large to train here "
                        f"(at most {limits.MAX_PARAMS / 1e6:.0f}M): lower the largest size.")
    return Spec(L, d, steps, kaplan_lr(counts["non_embedding"]) * c.lr_scale,
                steps * c.batch_size * c.block_size, counts)


def sweep_plan(cfg: SweepConfig, vocab: int) -> list[Spec]:
    lo, hi = sorted((cfg.min_params, cfg.max_params))
    shapes = ladder(lo, hi, cfg.n_models)
    if len(shapes) < 2:
        raise UserError(f"These sizes collapse to one point ({human(non_embedding(*shapes[0]))} parameters): "
                        "a scaling curve needs at least two different sizes. Widen the range or add models.")
    arch = "llama" if cfg.arch == "llama" else "gpt2"
    plan = [_spec(arch, L, d, cfg.tokens, cfg, vocab) for L, d in shapes]
    if plan[0].steps < MIN_STEPS:
        raise UserError(f"{cfg.tokens:,} tokens are only {plan[0].steps} steps of {cfg.batch_size}×{cfg.block_size}: "
                        f"give every model at least {MIN_STEPS * cfg.batch_size * cfg.block_size:,} tokens.")
    return plan


def iso_plan(cfg: IsoConfig, vocab: int) -> tuple[list[tuple[float, Spec]], list[str]]:
    """Every (budget, model) pair to train, each model given the tokens D = C/(6N) its budget
    allows, and notes on what was left out because it would train for too few steps."""
    lo, hi = sorted((cfg.iso_min, cfg.iso_max))
    shapes = ladder(lo, hi, cfg.iso_models)
    if len(shapes) < 3:
        raise UserError("An isoFLOP curve needs at least three different sizes: widen the size range.")
    plan, notes = [], []
    for c in cfg.budget_list():
        kept = []
        for L, d in shapes:
            n = param_counts("gpt2", L, d, vocab, cfg.block_size)["non_embedding"]
            s = _spec("gpt2", L, d, int(c / (6 * n)), cfg, vocab)
            if s.steps >= MIN_STEPS:
                kept.append((c, s))
        if not kept:
            smallest = param_counts("gpt2", *shapes[0], vocab, cfg.block_size)["non_embedding"]
            notes.append(f"C = {c:.0e} FLOPs is too small to train any of these models: even the smallest "
                         f"({human(smallest)}) would get {c / (6 * smallest):,.0f} tokens, under "
                         f"{MIN_STEPS} steps of {cfg.batch_size}×{cfg.block_size}.")
        elif len(kept) < len(shapes):
            notes.append(f"C = {c:.0e}: {len(shapes) - len(kept)} of the larger sizes left out (under "
                         f"{MIN_STEPS} steps each).")
        plan += kept
    if not plan:
        raise UserError(" ".join(notes) + " Raise the budget or lower the smallest size.")
    return plan, notes


# --- data, evaluation and the training call -------------------------------------------------------

@dataclasses.dataclass
class Corpus:
    tokenizer: object
    train: torch.Tensor
    val: torch.Tensor
    quick: torch.Tensor      # 64 fixed validation windows, evaluated during training
    full: torch.Tensor       # 256 fixed windows for the final loss: a steadier number to fit


def load_corpus(corpus: str, block: int) -> Corpus:
    cfg = PretrainConfig(corpus=corpus, tokenizer="char", block_size=block)
    data = prepare(cfg, load_text(cfg))  # cached: every job on the same text shares one tokenization
    return Corpus(data.tokenizer, data.train, data.val, fixed_windows(data.val, block, 64),
                  fixed_windows(data.val, block, 256))


def fixed_windows(ids: torch.Tensor, block: int, n: int) -> torch.Tensor:
    return windows(ids, torch.linspace(0, len(ids) - block, n).long(), block)


def mean_loss(model, x: torch.Tensor, batch: int = 32) -> float:
    """Mean next-token cross-entropy over windows x (the model shifts the labels itself)."""
    total = 0.0
    for i in range(0, len(x), batch):
        b = x[i:i + batch]
        total += model(input_ids=b, labels=b).loss.item() * len(b)
    return total / len(x)


class _Part:
    """One model's view of a job that trains several: records are tagged with the model, and
    "step" and "elapsed" continue from the models before it, so progress and ETA stay right."""

    def __init__(self, job, tags: dict, step0: int, seconds0: float, tokens_per_step: int):
        self.job, self.tags, self.step0, self.seconds0, self.tps = job, tags, step0, seconds0, tokens_per_step
        self.last: dict = {}

    def emit(self, r: dict) -> None:
        r = {**r, **self.tags, "model_step": r["step"], "tokens": r["step"] * self.tps,
             "step": self.step0 + r["step"], "elapsed": self.seconds0 + r.get("elapsed", 0.0)}
        if "val_loss" in r:
            self.last = r
        self.job.emit(r)

    def should_stop(self) -> bool:
        return self.job.should_stop()

    def wait_if_paused(self) -> None:
        self.job.wait_if_paused()


def train_lm(model, data_ids: torch.Tensor, evals: dict, steps: int, lr: float, block: int, batch: int,
             seed: int, reporter, max_seconds: float, loss_fn=None, eval_every: int | None = None,
             final_evals: dict | None = None):
    """Next-token training through the one loop. `evals` maps a metric name to fixed windows,
    e.g. {"val_loss": quick}; `final_evals` (same names) replaces them at the last evaluation."""
    gen = torch.Generator().manual_seed(seed)  # the same seed gives every model the same batches

    def next_batch(step: int) -> dict:
        x = windows(data_ids, torch.randint(len(data_ids) - block, (batch,), generator=gen), block)
        return {"input_ids": x, "labels": x}

    def evaluate(step: int, final: bool) -> dict:
        return {k: mean_loss(model, x) for k, x in ((final and final_evals) or evals).items()}

    s = LoopSettings(steps=steps, lr=lr, warmup_steps=max(1, steps // 10), eval_every=eval_every or max(1, steps // 8),
                     max_seconds=max_seconds)
    return train(model, loss_fn or (lambda m, b: m(**b).loss), next_batch, s, reporter, evaluate)


def _replay_key(job, what: str, cfg: StageConfig) -> str | None:
    """These jobs save no model: their curves are the result. The runner keeps a finished job
    for replay only when it returns something, so a finished one returns its name."""
    return None if job.should_stop() else f"{what}-{cfg.key()}"


def _set_info(job, key: str, row: dict) -> None:
    """Append to a list in job.info by replacing it, so a page's snapshot never sees it mid-change."""
    job.info[key] = [*job.info.get(key, []), row]


def _train_specs(job, items: list[tuple[dict, Spec, str]], corpus: Corpus, c: Common, info_key: str,
                 data_ids: torch.Tensor | None = None, evals: dict | None = None, eval_every=None):
    """Train (tags, spec, arch) one after another in this job and append each finished model's
    final losses to job.info[info_key]. Stops early, keeping what finished, when the job is
    stopped or out of time. Returns the last finished (model, row), or None."""
    tok, B, T = corpus.tokenizer, c.batch_size, c.block_size
    final = None if evals else {"val_loss": corpus.full}
    evals = evals or {"val_loss": corpus.quick}
    t0, step0, seconds0, last = time.perf_counter(), 0, 0.0, None
    for i, (tags, spec, arch) in enumerate(items):
        left = limits.MAX_JOB_SECONDS - (time.perf_counter() - t0)
        if job.should_stop() or left < 1:
            break
        model = build_model("clm", len(tok), spec.n_layer, spec.n_head, spec.n_embd, T, c.seed,
                            tok.pad_token_id, tok.eos_token_id, arch=arch)
        part = _Part(job, {"model": i, "label": spec.label, **tags}, step0, seconds0, B * T)
        res = train_lm(model, corpus.train if data_ids is None else data_ids, evals, spec.steps, spec.lr, T, B,
                       c.seed, part, left, eval_every=eval_every, final_evals=final)
        step0, seconds0 = step0 + spec.steps, seconds0 + res.seconds
        row = {**spec.row(), **tags, "status": res.status, "seconds": round(res.seconds, 1),
               **{k: v for k, v in part.last.items() if k.endswith("_loss")}}
        if res.status == "diverged":  # too high a learning rate for this size: say so, go on with the next
            job.message = f"{spec.label}: {res.message}."
            _set_info(job, info_key, row)
            continue
        if res.status != "done":
            if res.status == "time limit":
                job.message = (f"Stopped at the {limits.MAX_JOB_SECONDS:.0f} s limit while training {spec.label}; "
                               "the models that finished are shown.")
            break
        _set_info(job, info_key, row)
        last = (model.float().eval(), row)
    return last


def run_sweep(cfg: SweepConfig, job, owner: str | None = None) -> str | None:
    """Train every size on the same tokens, smallest first. Saves the largest finished model as
    a pretraining run (so pruning and distillation can start from it) and returns its folder."""
    corpus = load_corpus(cfg.corpus, cfg.block_size)
    plan = sweep_plan(cfg, len(corpus.tokenizer))
    job.info.update(vocab_size=len(corpus.tokenizer), uniform_loss=math.log(len(corpus.tokenizer)),
                    arch=cfg.arch, plan=[s.row() for s in plan])
    last = _train_specs(job, [({}, s, cfg.arch) for s in plan], corpus, cfg, "models")
    if last is None:
        return None
    model, row = last
    pcfg = PretrainConfig(corpus=cfg.corpus, tokenizer="char", arch=cfg.arch, size="custom", n_layer=row["layers"],
                          n_head=row["heads"], n_embd=row["width"], block_size=cfg.block_size,
                          batch_size=cfg.batch_size, lr=row["peak lr"], steps=row["steps"], seed=cfg.seed)
    summary = {"params": model.num_parameters(), "vocab_size": len(corpus.tokenizer), "objective": "clm",
               "val_loss": row.get("val_loss"), "from": "scaling sweep"}
    records = [r for r in job.records if r.get("label") == row["model"]]
    return str(runs.save_run(model, corpus.tokenizer, "pretrain", pcfg.to_dict(), records, summary,
                             name=f"sweep-{cfg.arch}-{row['model']}-{cfg.key()[:6]}", owner=owner))


def run_isoflop(cfg: IsoConfig, job) -> str:
    corpus = load_corpus(cfg.corpus, cfg.block_size)
    plan, notes = iso_plan(cfg, len(corpus.tokenizer))
    job.info.update(notes=notes, plan=[{**s.row(), "budget": c} for c, s in plan])
    _train_specs(job, [({"budget": c}, s, "gpt2") for c, s in plan], corpus, cfg, "runs")
    return _replay_key(job, "isoflop", cfg)


def overfit_plan(cfg: OverfitConfig, vocab: int) -> tuple[Spec, Spec]:
    """The small and the large model, each trained on of_chars characters for of_epochs epochs."""
    c = cfg.replace(lr_scale=cfg.of_lr_scale)
    small, large = (_spec("gpt2", *shape_for(n), cfg.of_chars * cfg.of_epochs, c, vocab)
                    for n in sorted((cfg.of_small, cfg.of_large)))
    if small.n == large.n:
        raise UserError("The two sizes collapse to one model: make the large one larger.")
    return small, large


def run_overfit(cfg: OverfitConfig, job) -> str:
    """A small and a large model on the same few thousand characters, many epochs: the large one
    memorises them (training loss falls, validation loss turns up); the small one cannot."""
    corpus = load_corpus(cfg.corpus, cfg.block_size)
    if len(corpus.train) < cfg.of_chars + cfg.block_size:
        raise UserError(f"The corpus has only {len(corpus.train):,} training characters: ask for fewer.")
    ids = corpus.train[:cfg.of_chars]
    small, large = overfit_plan(cfg, len(corpus.tokenizer))
    job.info.update(epoch_tokens=cfg.of_chars, plan=[small.row(), large.row()])
    evals = {"val_loss": corpus.quick, "train_eval_loss": fixed_windows(ids, cfg.block_size, 64)}
    _train_specs(job, [({"role": "small"}, small, "gpt2"), ({"role": "large"}, large, "gpt2")], corpus, cfg,
                 "models", data_ids=ids, evals=evals, eval_every=max(1, small.steps // 40))
    return _replay_key(job, "overfit", cfg)


# --- smaller models that keep most of the quality ------------------------------------------------

def load_base(name: str):
    """A finished causal-LM run and its corpus, re-tokenised the way it was trained."""
    found = [r for r in runs.list_runs(stage="pretrain") if r.path.name == name]
    if not found:
        raise UserError(f"No pretraining run named {name!r} here: pick one from the list.")
    info = found[0]
    if info.objective != "clm":
        raise UserError(f"{name} is a masked-token (BERT) model: pick a next-token (GPT) run.")
    if info.config.get("corpus") not in ("world", "python-docs"):
        raise UserError(f"{name} was trained on an uploaded or hub text that is not kept here: "
                        "pick a run trained on a built-in corpus.")
    model, tok, info = runs.load_run(info.path)
    corpus = load_corpus(info.config["corpus"], info.config.get("block_size", 64))
    if corpus.tokenizer.get_vocab() != tok.get_vocab():
        raise UserError(f"{name} used a tokenizer this page cannot rebuild (char-level runs only).")
    return model, corpus, info


def prunable(model) -> list[tuple[torch.nn.Module, str]]:
    """Every weight matrix inside the transformer blocks: attention and MLP. Embeddings (and the
    output layer tied to them) stay dense, as in most pruning studies of language models."""
    emb = model.get_input_embeddings().weight
    return [(m, "weight") for m in model.modules()
            if not isinstance(m, torch.nn.Embedding) and isinstance(getattr(m, "weight", None), torch.nn.Parameter)
            and m.weight.dim() == 2 and m.weight is not emb]


def pruned(model, sparsity: float, method: str):
    """A copy with the smallest-magnitude weights zeroed: "global" ranks all prunable weights
    together (torch.nn.utils.prune.global_unstructured); "per-layer" prunes each matrix alike."""
    m = copy.deepcopy(model)
    params = prunable(m)
    if sparsity > 0:
        if method == "global":
            prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=sparsity)
        else:
            for mod, name in params:
                prune.l1_unstructured(mod, name, amount=sparsity)
        for mod, name in params:
            prune.remove(mod, name)  # bake the mask into the weight
    return m


def sparsity_of(model) -> float:
    ws = [m.weight for m, _ in prunable(model)]
    return sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)


@torch.no_grad()
def run_prune(cfg: PruneConfig, job) -> str:
    model, corpus, info = load_base(cfg.prune_run)
    kept = sum(w.numel() for w in (m.weight for m, _ in prunable(model)))
    job.info.update(base=info.name, params=model.num_parameters(), prunable=kept,
                    uniform_loss=math.log(len(corpus.tokenizer)))
    k = 0
    for method in ("global", "per-layer"):
        for s in SPARSITIES:
            if job.should_stop():
                return None
            job.wait_if_paused()
            m = pruned(model, s, method)
            k += 1
            # "loss" and "step" are what the job's progress bar reads
            job.emit({"step": k, "loss": mean_loss(m, corpus.quick), "method": method, "sparsity": s,
                      "measured_sparsity": sparsity_of(m)})
    return _replay_key(job, "prune", cfg)


def distill_loss(teacher, temperature: float, alpha: float):
    """Hinton et al. 2015: match the teacher's softened distribution, KL(p_T || p_S) at
    temperature T, scaled by T² so its gradients keep their size as T changes, mixed with the
    usual cross-entropy on the true next token."""
    def loss_fn(model, batch):
        x = batch["input_ids"]
        out = model(input_ids=x, labels=x)
        with torch.no_grad():
            t_logits = teacher(input_ids=x).logits[:, :-1].float()
        s_logits = out.logits[:, :-1].float()
        kl = F.kl_div(F.log_softmax(s_logits / temperature, -1).flatten(0, 1),
                      F.log_softmax(t_logits / temperature, -1).flatten(0, 1), log_target=True,
                      reduction="batchmean")
        loss = alpha * temperature ** 2 * kl + (1 - alpha) * out.loss
        return loss, {"distill/kl": kl.item(), "distill/ce": out.loss.item()}
    return loss_fn


TEACHER = {"corpus": "python-docs", "n_layer": 4, "n_embd": 64, "block": 64, "lr": 3e-3}  # ~200k parameters


def teacher_name(cfg: DistillConfig) -> str:
    blob = json.dumps([TEACHER, cfg.teacher_steps, cfg.seed], sort_keys=True)
    return f"teacher-{hashlib.sha1(blob.encode()).hexdigest()[:8]}"


def saved_teacher(cfg: DistillConfig, owner: str | None) -> str | None:
    """The folder name of the teacher an earlier job trained with these settings, if any."""
    if cfg.teacher:
        return cfg.teacher
    found = [r for r in runs.list_runs(stage="pretrain", owner=owner) if r.name == teacher_name(cfg) and not r.baked]
    return found[0].path.name if found else None


def _teacher(cfg: DistillConfig, job, owner: str | None):
    """The picked run, the one trained earlier with these settings, or a new one trained now on
    Python's docs and saved: a teacher whose probabilities carry real uncertainty to pass on."""
    if name := saved_teacher(cfg, owner):
        return load_base(name)
    t = TEACHER
    corpus = load_corpus(t["corpus"], t["block"])
    tok = corpus.tokenizer
    model = build_model("clm", len(tok), t["n_layer"], t["n_embd"] // HEAD_DIM, t["n_embd"], t["block"], cfg.seed,
                        tok.pad_token_id, tok.eos_token_id)
    part = _Part(job, {"role": "teacher"}, 0, 0.0, DISTILL_BATCH * t["block"])
    res = train_lm(model, corpus.train, {"val_loss": corpus.quick}, cfg.teacher_steps, t["lr"], t["block"],
                   DISTILL_BATCH, cfg.seed, part, limits.MAX_JOB_SECONDS)
    if res.status != "done":
        return None
    model = model.float().eval()
    pcfg = PretrainConfig(corpus=t["corpus"], tokenizer="char", size="custom", n_layer=t["n_layer"],
                          n_head=t["n_embd"] // HEAD_DIM, n_embd=t["n_embd"], block_size=t["block"],
                          batch_size=DISTILL_BATCH, lr=t["lr"], steps=cfg.teacher_steps, seed=cfg.seed)
    summary = {"params": model.num_parameters(), "vocab_size": len(tok), "objective": "clm",
               "val_loss": part.last.get("val_loss"), "from": "distillation teacher"}
    path = runs.save_run(model, tok, "pretrain", pcfg.to_dict(), list(job.records), summary, name=teacher_name(cfg),
                         owner=owner)
    return model, corpus, runs.read_info(path)


def run_distill(cfg: DistillConfig, job, owner: str | None = None) -> str | None:
    """The same student trained twice from the same initialisation on the same batches: once on
    the true next token alone, once also matching the teacher. Both validated on true text."""
    if cfg.st_width % HEAD_DIM:
        raise UserError(f"Student width {cfg.st_width} is not a multiple of {HEAD_DIM}: pick one that is.")
    t0 = time.perf_counter()
    got = _teacher(cfg, job, owner)
    if got is None:
        return None
    teacher, corpus, info = got
    teacher.requires_grad_(False)
    T, arch, tok = info.config.get("block_size", 64), info.config.get("arch", "gpt2"), corpus.tokenizer
    counts = param_counts(arch, cfg.st_layers, cfg.st_width, len(tok), T)
    job.info.update(teacher=info.name, teacher_params=teacher.num_parameters(), student_params=counts["total"],
                    teacher_val_loss=mean_loss(teacher, corpus.quick))
    step0 = next((r["step"] for r in reversed(job.records) if "loss" in r), 0)
    for role, loss_fn in (("from scratch", None), ("distilled", distill_loss(teacher, cfg.temperature, cfg.alpha))):
        left = limits.MAX_JOB_SECONDS - (time.perf_counter() - t0)
        if job.should_stop() or left < 1:
            break
        student = build_model("clm", len(tok), cfg.st_layers, cfg.st_width // HEAD_DIM, cfg.st_width, T, cfg.seed,
                              tok.pad_token_id, tok.eos_token_id, arch=arch)
        part = _Part(job, {"role": role}, step0, time.perf_counter() - t0, DISTILL_BATCH * T)
        res = train_lm(student, corpus.train, {"val_loss": corpus.quick}, cfg.st_steps, cfg.st_lr, T, DISTILL_BATCH,
                       cfg.seed, part, left, loss_fn=loss_fn, eval_every=max(1, cfg.st_steps // 20))
        step0 += cfg.st_steps
        if res.status != "done":
            job.message = res.message
            break
        _set_info(job, "students", {"role": role, "val_loss": part.last.get("val_loss"),
                                    "seconds": round(res.seconds, 1)})
    return _replay_key(job, "distill", cfg)
