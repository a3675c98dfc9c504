"""The one training loop. Every stage (pretraining, SFT, reward model, DPO, distillation)
brings its own batches and loss; stepping, evaluating, stopping and reporting live here.

The loop knows nothing of who watches (minGPT's callbacks): it calls `reporter.emit(record)`
with plain dicts, asks `reporter.should_stop()` once per step and blocks in
`reporter.wait_if_paused()` (engine.core.report's contract). It returns every record it emitted
and the last evaluation's metrics, from which the stage builds the run's summary.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import torch
from transformers import get_scheduler

from engine.core.report import Reporter


@dataclasses.dataclass
class LoopSettings:
    steps: int
    lr: float
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1      # cosine decays to lr/10, as nanoGPT does
    weight_decay: float = 0.1
    betas: tuple = (0.9, 0.99)     # nanoGPT's beta2 for small models and batches
    grad_clip: float = 1.0
    eval_every: int = 100
    max_seconds: float = 300.0
    bf16: bool = True              # autocast matmuls to bfloat16: faster on CPUs with bf16 support; losses agree
                                   # with fp32 to about three decimals here (DESIGN.md)
    # The schedule runs on whichever ends first, the steps or the time limit: on a busy machine a
    # run cut off by its time limit still anneals, instead of stopping at its peak learning rate.
    time_aware: bool = True
    diverge_ratio: float = 4.0     # a loss above this multiple of its first value counts as diverged; 0:
                                   # only NaN/inf (for losses near zero that change sign, as policy gradients do)


@dataclasses.dataclass
class LoopResult:
    status: str                    # "done" | "stopped" | "time limit" | "diverged"
    steps: int
    seconds: float
    message: str = ""
    records: list[dict] = dataclasses.field(default_factory=list)   # everything emitted, in order
    final_eval: dict = dataclasses.field(default_factory=dict)      # the last evaluation's metrics


def train(model: torch.nn.Module, loss_fn: Callable, next_batch: Callable[[int], dict],
          s: LoopSettings, reporter: Reporter, evaluate: Callable[[int, bool], dict] | None = None,
          params=None, after_eval: Callable[[int, bool], None] | None = None) -> LoopResult:
    """Train `model` for `s.steps` steps.

    loss_fn(model, batch) -> loss tensor, or (loss, {metric: float}).
    next_batch(step) -> dict of tensors; "input_ids" (if present) counts the tokens.
    evaluate(step, final) -> {metric: float}, run every `s.eval_every` steps, at step 0 and at the end.
    after_eval(step, final): slow extras (text samples, checkpoints), called once the metrics are out.
    """
    params = [p for p in (params or model.parameters()) if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]   # no weight decay on biases and norms
    no_decay = [p for p in params if p.dim() < 2]
    # fused: one kernel per group for all tensors. AdamW's default on CPU is a Python loop over the
    # tensors, about ten ops each (foreach kernels are for GPUs only): 5-30% of a small model's step.
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": s.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=s.lr, betas=s.betas,
                            fused=all(p.device.type == "cpu" for p in params))
    sched = get_scheduler("cosine_with_min_lr", opt, num_warmup_steps=s.warmup_steps,
                          num_training_steps=s.steps, scheduler_specific_kwargs={"min_lr_rate": s.min_lr_ratio})
    t0 = time.perf_counter()
    paused = 0.0
    status, message, step, first, tokens = "done", "", 0, math.inf, 0
    records: list[dict] = []
    final_eval: dict = {}

    def emit(record: dict) -> None:
        records.append(record)
        reporter.emit(record)

    def run_eval(step: int, final: bool = False):
        if evaluate is None:
            return
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=s.bf16):
            metrics = evaluate(step, final)
        final_eval.clear()
        final_eval.update(metrics)
        emit({"step": step, "elapsed": time.perf_counter() - t0 - paused, "tokens": tokens, **metrics})
        if after_eval is not None:
            with torch.no_grad():
                after_eval(step, final)
        model.train()

    model.train()
    run_eval(0)
    for step in range(1, s.steps + 1):
        if reporter.should_stop():
            status, step = "stopped", step - 1
            break
        p0 = time.perf_counter()
        reporter.wait_if_paused()
        paused += time.perf_counter() - p0
        if time.perf_counter() - t0 - paused > s.max_seconds:
            status, step = "time limit", step - 1
            message = f"stopped at the time limit of {s.max_seconds:.0f} s after {step} steps"
            break
        ts = time.perf_counter()
        batch = next_batch(step)
        with torch.autocast("cpu", torch.bfloat16, enabled=s.bf16):
            out = loss_fn(model, batch)
        loss, extra = out if isinstance(out, tuple) else (out, {})
        value = loss.item()
        first = value if step == 1 else first
        if not math.isfinite(value) or (s.diverge_ratio and value > s.diverge_ratio * first):
            what = ("NaN" if math.isnan(value) else "infinite") if not math.isfinite(value) else \
                f"{value:.1f}, over {s.diverge_ratio:g}x its start of {first:.2f}"
            status, message = "diverged", f"loss became {what} at step {step}: lower the learning rate"
            emit({"step": step, "event": "diverged", "message": message})
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, s.grad_clip).item()
        lr = opt.param_groups[0]["lr"]   # the rate this step used
        opt.step()
        sched.step()
        if s.time_aware:  # move the schedule on to the share of the time budget used, if that is ahead
            ahead = (time.perf_counter() - t0 - paused) / s.max_seconds * s.steps
            if ahead > step:
                for group, base, f in zip(opt.param_groups, sched.base_lrs, sched.lr_lambdas):
                    group["lr"] = base * f(min(s.steps, int(ahead)))
        dt = time.perf_counter() - ts
        ntok = batch["input_ids"].numel() if "input_ids" in batch else 0
        tokens += ntok
        emit({"step": step, "loss": value, "lr": lr, "grad_norm": grad_norm,
              "tokens_per_sec": ntok / dt if dt > 0 else 0.0, "step_ms": 1000 * dt, "tokens": tokens,
              "elapsed": time.perf_counter() - t0 - paused, **extra})
        if step % s.eval_every == 0 and step != s.steps:
            run_eval(step)
    if status != "diverged" and step > 0:
        run_eval(step, final=True)
    return LoopResult(status, step, time.perf_counter() - t0 - paused, message, records, dict(final_eval))
