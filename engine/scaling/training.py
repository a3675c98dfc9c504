"""Training a ladder of models in one job: the corpus every model reads, fixed evaluation windows,
and each model through the one loop as a Segment of the job, so one progress bar spans them all."""
from __future__ import annotations

import dataclasses
import time

import torch

from engine.core import limits
from engine.core.loop import LoopSettings, train
from engine.core.models import build_model
from engine.core.report import Reporter, Segment
from engine.pretraining import PretrainConfig, load_text, prepare, windows
from engine.scaling.config import Common
from engine.scaling.plans import Spec


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


def train_lm(model, data_ids: torch.Tensor, evals: dict, steps: int, lr: float, block: int, batch: int,
             seed: int, reporter, max_seconds: float, loss_fn=None, eval_every: int | None = None,
             final_evals: dict | None = None):
    """Next-token training through the one loop. `evals` maps a metric name to fixed windows,
    e.g. {"eval_loss": quick}; `final_evals` (same names) replaces them at the last evaluation."""
    gen = torch.Generator().manual_seed(seed)  # the same seed gives every model the same batches

    def next_batch(step: int) -> dict:
        x = windows(data_ids, torch.randint(len(data_ids) - block, (batch,), generator=gen), block)
        return {"input_ids": x, "labels": x}

    def evaluate(step: int, final: bool) -> dict:
        return {k: mean_loss(model, x) for k, x in ((final and final_evals) or evals).items()}

    s = LoopSettings(steps=steps, lr=lr, warmup_steps=max(1, steps // 10), eval_every=eval_every or max(1, steps // 8),
                     max_seconds=max_seconds)
    return train(model, loss_fn or (lambda m, b: m(**b).loss), next_batch, s, reporter, evaluate)


@dataclasses.dataclass
class Ladder:
    """What training a ladder of models gave: a row per model that ended (its settings and final
    losses), the last model that finished with its own records, and how the job ended."""
    rows: list[dict]
    model: object | None
    records: list[dict]
    status: str       # "done" | "stopped" | "time limit"
    message: str


def train_ladder(reporter: Reporter, items: list[tuple[dict, Spec, str]], corpus: Corpus, c: Common, info_key: str,
                 data_ids: torch.Tensor | None = None, evals: dict | None = None, eval_every=None) -> Ladder:
    """Train (tags, spec, arch) one after another in this job, each a Segment tagged with its index
    ("model"), its label and `tags`, and set each ended model's row in info[info_key]. Stops early,
    keeping what finished, when the job is stopped or out of time."""
    tok, B, T = corpus.tokenizer, c.batch_size, c.block_size
    final = None if evals else {"eval_loss": corpus.full}
    evals = evals or {"eval_loss": corpus.quick}
    t0, step0, seconds0 = time.perf_counter(), 0, 0.0
    out = Ladder([], None, [], "done", "")
    for i, (tags, spec, arch) in enumerate(items):
        left = limits.MAX_JOB_SECONDS - (time.perf_counter() - t0)
        if reporter.should_stop():
            out.status = "stopped"
            break
        if left < 1:
            out.status = "time limit"
            break
        model = build_model("clm", len(tok), spec.n_layer, spec.n_head, spec.n_embd, T, c.seed,
                            tok.pad_token_id, tok.eos_token_id, arch=arch)
        part = Segment(reporter, tags={"model": i, "label": spec.label, **tags}, step0=step0, seconds0=seconds0)
        res = train_lm(model, corpus.train if data_ids is None else data_ids, evals, spec.steps, spec.lr, T, B,
                       c.seed, part, left, eval_every=eval_every, final_evals=final)
        step0, seconds0 = step0 + spec.steps, seconds0 + res.seconds
        row = {**spec.row(), **tags, "status": res.status, "seconds": round(res.seconds, 1),
               **{k: v for k, v in res.final_eval.items() if k.endswith("_loss")}}
        if res.status in ("stopped", "time limit"):
            out.status = res.status
            break
        out.rows.append(row)
        reporter.set_info(**{info_key: list(out.rows)})
        if res.status == "diverged":  # too high a learning rate for this size: say so, go on with the next
            out.message = f"{spec.label}: {res.message}."
            continue
        out.model, out.records = model.float().eval(), res.records
    if out.status == "time limit":
        out.message = (f"Stopped at the {limits.MAX_JOB_SECONDS:.0f} s limit before all models were trained; "
                       "the models that finished are shown.")
    return out
