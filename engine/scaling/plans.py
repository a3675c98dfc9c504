"""Which models an experiment trains: shapes spread evenly in log N, each with its steps, learning
rate (Kaplan's LR(N)), tokens and FLOPs."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from engine.core import limits
from engine.core.config import UserError
from engine.core.numbers import human
from engine.scaling.config import Common, IsoConfig, OverfitConfig, SweepConfig
from engine.scaling.laws import kaplan_lr, non_embedding, param_counts, train_flops

HEAD_DIM = 16                 # heads = width / 16, so shape changes only in L and d ...
WIDTHS = (8, *range(16, 257, 16))  # ... except the one 8-wide head of the tiniest models
MIN_STEPS = 20                # fewer optimizer steps than this do not train a model at all


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


def overfit_plan(cfg: OverfitConfig, vocab: int) -> tuple[Spec, Spec]:
    """The small and the large model, each trained on of_chars characters for of_epochs epochs."""
    c = cfg.replace(lr_scale=cfg.of_lr_scale)
    small, large = (_spec("gpt2", *shape_for(n), cfg.of_chars * cfg.of_epochs, c, vocab)
                    for n in sorted((cfg.of_small, cfg.of_large)))
    if small.n == large.n:
        raise UserError("The two sizes collapse to one model: make the large one larger.")
    return small, large
