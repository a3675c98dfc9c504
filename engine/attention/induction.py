"""Watch induction heads form: a small GPT-2 trained on random tokens whose second half repeats
the first half.

The first half is pure noise: no model can beat ln(V) nats per token there (a little less, as
tokens do not repeat within a half). The repeat is predictable, but only by looking back: find
where the current token occurred before and copy the token that followed it. Olsson et al. 2022
("In-context Learning and Induction Heads") call a head doing this an induction head; it needs
two layers (a previous-token head whose output the induction head's keys read, Elhage et al.
2021), and it forms in a sudden phase change, visible as a bump in the training loss, at which
in-context learning (their score: loss at token 500 minus loss at token 50) jumps. Here the
loss on the repeat sits on a plateau, then falls to near zero as the induction score jumps.

The half-length varies from step to step, so copying "the token n - 1 places back" for a fixed
n cannot solve the task; only matching the token's content can.
"""
from __future__ import annotations

import dataclasses
import math
import string

import numpy as np
import torch

from engine import demos
from engine.attention.heads import extract
from engine.core import limits
from engine.core.config import StageConfig, UserError, field
from engine.core.loop import LoopSettings, train
from engine.core.models import build_model, count_params
from engine.core.report import Reporter, StageResult
from engine.core.runs import Trained
from engine.core.tokenizer import char_tokenizer

# Symbols for the random tokens: readable as text, so a trained run also works on the Attention
# page with typed input such as "qwertyqwerty".
ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits
EVAL_SEQUENCES = 64


@dataclasses.dataclass
class InductionConfig(StageConfig):
    """Watch an induction head form in a 2-layer GPT-2 trained on repeated random tokens."""
    # The defaults are the quick demo: on 24 symbols drawn from 16, the head forms near step 550 of 1,000
    # (seed 0; 18 s on this 2-core machine at load 7, about 7 s of CPU). The standard preset is the
    # original setting: 48 symbols from 32, where it forms near step 1,100 of 2,000.
    PRESETS = {"quick demo": dict(n_layer=2, seq_len=24, vocab=16, steps=1000, eval_every=50, max_seconds=90),
               "standard": dict(n_layer=2, seq_len=48, vocab=32, steps=2000, eval_every=25, max_seconds=240),
               "thorough": dict(n_layer=2, seq_len=48, vocab=32, steps=5000, eval_every=50, max_seconds=300)}
    PRESET_NOTES = {"quick demo": "16 symbols, 1,000 steps: the head forms about halfway, within 30 s",
                    "standard": "32 symbols and longer sequences, 2,000 steps: about a minute or more",
                    "thorough": "32 symbols, 5,000 steps: train on long after the phase change (several minutes)"}
    n_layer: int = field(2, "layers: one layer cannot form an induction head", range=(1, 4))
    n_head: int = field(4, "attention heads per layer", range=(1, 8))
    n_embd: int = field(64, "width", range=(16, 256))
    seq_len: int = field(24, "longest sequence: a random half, then the same half again", range=(16, 128))
    vocab: int = field(16, "distinct random symbols", range=(8, len(ALPHABET)))
    batch_size: int = field(32, "sequences per step", range=(1, 256))
    lr: float = field(1e-3, "peak learning rate", range=(1e-5, 1.0))
    init_std: float = field(0.1, "spread of the initial weights (GPT-2's is 0.02; larger forms the head sooner)",
                            range=(0.005, 0.5))
    steps: int = field(1000, "training steps", range=(1, 100_000))
    warmup: int = field(50, "warmup steps before cosine decay", range=(0, 100_000))
    eval_every: int = field(50, "steps between evaluations (and saved attention patterns)", range=(1, 100_000))
    max_seconds: int = field(90, "time limit in seconds", range=(1, limits.MAX_JOB_SECONDS))
    seed: int = field(0, "random seed: same seed and config give the same curves")

    @property
    def half(self) -> int:
        return self.seq_len // 2

    def check(self) -> None:
        if self.half > self.vocab:
            raise UserError(f"A half of {self.half} tokens needs at least {self.half} distinct symbols "
                            f"(tokens do not repeat within a half): raise the vocabulary or shorten the sequence.")


def repeated_batch(symbols: torch.Tensor, batch: int, half: int, gen: torch.Generator) -> torch.Tensor:
    """(batch, 2·half) token ids: `half` distinct random symbols, then the same ones again.
    Distinct, so each token of the repeat has exactly one earlier occurrence to copy from."""
    r = symbols[torch.rand(batch, len(symbols), generator=gen).argsort(-1)[:, :half]]
    return torch.cat([r, r], dim=1)


def head_grids(attn: torch.Tensor, half: int) -> tuple[np.ndarray, np.ndarray]:
    """(induction, previous-token) scores per head from (layers, heads, T, T) attention on a
    repeated sequence. Induction: mean attention from each repeat position q to q - half + 1,
    the token after the earlier copy (same definition as engine.attention.induction_scores).
    Previous-token: mean attention from q to q - 1 over all positions after the first."""
    T = attn.shape[-1]
    q = torch.arange(half, T)
    p = torch.arange(1, T)
    return (attn[..., q, q - half + 1].mean(-1).numpy(), attn[..., p, p - 1].mean(-1).numpy())


def score_heads(model, tok, vocab: int, half: int, batch: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(induction, previous-token) grids of a saved run on fresh repeats of its own symbols:
    engine.attention.induction_scores draws from the whole character vocabulary, most of which
    this stage never trained. Each sequence goes through attention.extract, which holds the lock
    that guards models shared between sessions."""
    symbols = torch.tensor(tok.convert_tokens_to_ids(list(ALPHABET[:vocab])))
    x = repeated_batch(symbols, batch, half, torch.Generator().manual_seed(seed))
    attn = torch.stack([extract(model, tok, "".join(tok.convert_ids_to_tokens(row))).attn for row in x.tolist()])
    return head_grids(attn.mean(0), half)


def fit(cfg: InductionConfig, reporter: Reporter) -> Trained:
    """Train; report at every evaluation: loss on each half, the best induction and previous-token
    head, and (as a sample) the attention of one fixed example."""
    cfg.check()
    tok = char_tokenizer(ALPHABET[:cfg.vocab])
    symbols = torch.tensor(tok.convert_tokens_to_ids(list(ALPHABET[:cfg.vocab])))
    L, H, D = cfg.n_layer, cfg.n_head, cfg.n_embd
    model = build_model("clm", len(tok), L, H, D, cfg.seq_len, cfg.seed, tok.pad_token_id, tok.eos_token_id)
    with torch.no_grad():
        # GPT-2 draws every weight matrix from N(0, 0.02), scaled down for the residual outputs;
        # scaling them all up is its init at another std. At 0.02 no induction head had formed
        # after 3000 steps (best score 0.04); at 0.1 one formed near step 1000 in each of 3 seeds
        # (bench/bench_induction.py).
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(cfg.init_std / model.config.initializer_range)
    n_params = count_params(L, D, len(tok), cfg.seq_len)
    gen = torch.Generator().manual_seed(cfg.seed)
    # Half-lengths from a quarter of the context up: no fixed offset to copy from (see above).
    halves = torch.randint(max(2, cfg.half // 2), cfg.half + 1, (cfg.steps + 1,), generator=gen)
    eval_ids = repeated_batch(symbols, EVAL_SEQUENCES, cfg.half, torch.Generator().manual_seed(cfg.seed + 1))
    m = cfg.half

    def next_batch(step: int) -> dict:
        x = repeated_batch(symbols, cfg.batch_size, int(halves[step]), gen)
        return {"input_ids": x, "labels": x}

    def loss_fn(model, batch):
        return model(**batch).loss

    def evaluate(step: int, final: bool) -> dict:
        out = model(input_ids=eval_ids, output_attentions=True)
        # Position t-1 predicts token t. The first repeated token (t = m) follows a token with no
        # earlier occurrence, so it is left out of the repeat's loss: nothing there can be copied.
        nll = torch.nn.functional.cross_entropy(out.logits[:, :-1].float().transpose(1, 2), eval_ids[:, 1:],
                                                reduction="none").mean(0)
        attn = torch.stack(out.attentions).float()           # (layers, batch, heads, T, T)
        induction, previous = head_grids(attn.mean(1), m)
        reporter.add_sample({"step": step, "attn": attn[:, 0].numpy().astype(np.float16),
                        "induction": induction, "previous_token": previous})
        return {"loss_first_half": nll[:m - 1].mean().item(), "loss_repeat": nll[m:].mean().item(),
                "induction_score": float(induction.max()), "previous_token_score": float(previous.max())}

    facts = {"params": n_params, "uniform_loss": math.log(cfg.vocab), "layers": L, "heads": H, "half": m}
    reporter.set_info(**facts, example=tok.convert_ids_to_tokens(eval_ids[0].tolist()))
    settings = LoopSettings(steps=cfg.steps, lr=cfg.lr, warmup_steps=min(cfg.warmup, cfg.steps),
                            eval_every=cfg.eval_every, max_seconds=cfg.max_seconds)
    result = train(model, loss_fn, next_batch, settings, reporter, evaluate)
    if result.status == "diverged":
        raise UserError(result.message)
    return Trained(model.float().eval(), tok, result, facts)


def run(cfg: InductionConfig, reporter: Reporter, owner: str | None = None) -> StageResult:
    """The Attention page's job: train and save as a run of stage "induction"."""
    trained = fit(cfg, reporter)
    return trained.save("induction", cfg.to_dict(), name=f"{cfg.n_layer}x{cfg.n_head}-{cfg.key()[:6]}", owner=owner)


def run_demo(cfg: InductionConfig, reporter: Reporter) -> StageResult:
    """The page's recorded demo: the same training, no saved run (its curves are the result)."""
    return fit(cfg, reporter).result()


def phase_change(records: list[dict]) -> dict | None:
    """Where the induction head formed: the first evaluation at which the best head's induction score
    passed halfway from its first value to its last, and the last one before that still on the plateau
    (within a tenth of the rise of the start). None until the score has risen by 0.1."""
    ev = [r for r in records if "induction_score" in r]
    if len(ev) < 2 or ev[-1]["induction_score"] - ev[0]["induction_score"] < 0.1:
        return None
    start, end = ev[0]["induction_score"], ev[-1]["induction_score"]
    i = next(i for i, r in enumerate(ev) if r["induction_score"] >= start + (end - start) / 2)
    flat = max((j for j in range(i) if ev[j]["induction_score"] < start + (end - start) / 10), default=0)
    return {"step": ev[i]["step"], "plateau_until": ev[flat]["step"], "start": start, "end": end,
            "loss_repeat_plateau": ev[flat]["loss_repeat"], "loss_repeat_end": ev[-1]["loss_repeat"]}


# The Attention page's first screen shows this run before anyone trains (`python -m engine demo
# induction-forms`): the quick-demo settings, seed 0, bounded by its steps, not a time limit.
demos.register("induction-forms", run_demo, InductionConfig(max_seconds=limits.MAX_JOB_SECONDS),
               keep=("uniform_loss", "half", "layers", "heads", "params"))
