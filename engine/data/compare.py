"""What cleaning buys (the Data page's headline): two identical tiny GPTs, one trained on the raw crawl
and one on the cleaned crawl, the same steps on the same budget, scored on the same clean held-out text."""
from __future__ import annotations

import copy
import dataclasses
import math

import torch

from engine import demos
from engine.core.config import StageConfig, UserError, field
from engine.core.limits import MAX_JOB_SECONDS
from engine.core.loop import LoopSettings, train
from engine.core.models import SIZES, build_model
from engine.core.report import Reporter, Segment, StageResult
from engine.core.tokenizer import char_tokenizer, encode
from engine.data.cleaning import CleaningConfig, TrainTexts, clean, train_texts
from engine.data.crawl import CrawlConfig, build_crawl
from engine.pretraining import windows


@dataclasses.dataclass
class CompareConfig(StageConfig):
    budget: int = field(400_000, "characters of training text for each model: raw and cleaned are cut to "
                                 "the same length", range=(10_000, 5_000_000))
    size: str = field("50k", "model size preset (both models are this size)", choices=tuple(SIZES))
    block_size: int = field(64, "context length in characters", range=(16, 256))
    batch_size: int = field(16, "sequences per step", range=(1, 128))
    steps: int = field(400, "training steps for each model: the same token budget", range=(10, 20_000))
    lr: float = field(3e-3, "peak learning rate", range=(1e-5, 1.0), options=(1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2))
    eval_every: int = field(25, "steps between evaluations on the held-out text", range=(1, 20_000))
    max_seconds: int = field(120, "time limit for each model", range=(5, MAX_JOB_SECONDS // 2))
    seed: int = field(0, "initial weights and batch order, the same for both models",
                     shown=(0, 2**31 - 1))


RUNS = ("raw", "cleaned")


def compare(cfg: CompareConfig, reporter: Reporter, texts: TrainTexts) -> StageResult:
    """Train two identical tiny GPTs (same initial weights, steps and batch positions) through the
    one loop, one on the raw crawl text, one on the cleaned text, one after the other so they
    do not slow each other down. Both are scored on the same clean held-out text with the same
    character tokenizer, so their losses are comparable. Records carry "run" (raw or cleaned);
    the final losses go to info["final"] and the summary."""
    T, B = cfg.block_size, cfg.batch_size
    # One vocabulary for both: every character of either text or the held-out text.
    tok = char_tokenizer(texts.raw + texts.cleaned + texts.heldout)
    val = torch.tensor(encode(tok, texts.heldout), dtype=torch.long)
    train_ids = {name: torch.tensor(encode(tok, getattr(texts, name)), dtype=torch.long) for name in RUNS}
    short = [f"{name} text ({len(ids)})" for name, ids in (("held-out", val), *train_ids.items()) if len(ids) <= 2 * T]
    if short:
        raise UserError(f"Too little text to train with a context of {T}: {', '.join(short)} characters. Keep more "
                        "documents (loosen the filters, or a bigger crawl) or raise the budget.")
    n_eval = min(64, (len(val) - T) // max(1, T // 2) + 1)
    starts = torch.linspace(0, len(val) - T, n_eval).long()
    val_batches = [windows(val, starts[i:i + B], T) for i in range(0, n_eval, B)]
    L, H, D = SIZES[cfg.size]
    # One untrained model, copied for each run: build_model seeds torch's global RNG, which other
    # jobs' threads also draw from (any nn.Linear constructor), so two builds can differ.
    untrained = build_model("clm", len(tok), L, H, D, T, cfg.seed, tok.pad_token_id, tok.eos_token_id)
    facts = {"vocab_size": len(tok), "uniform_loss": math.log(len(tok)), "train_chars": texts.budget,
             "heldout_chars": len(val)}
    reporter.set_info(**facts, note=texts.note, final={})
    final = {}
    for k, name in enumerate(RUNS):
        ids = train_ids[name]
        model = copy.deepcopy(untrained)
        gen = torch.Generator().manual_seed(cfg.seed)

        def next_batch(step: int, ids=ids, gen=gen) -> dict:
            x = windows(ids, torch.randint(len(ids) - T, (B,), generator=gen), T)
            return {"input_ids": x, "labels": x}  # the model shifts labels by one itself

        def evaluate(step: int, final: bool, model=model) -> dict:
            losses = [model(input_ids=x, labels=x).loss.item() for x in val_batches]
            return {"eval_loss": sum(losses) / len(losses)}

        settings = LoopSettings(steps=cfg.steps, lr=cfg.lr, warmup_steps=min(50, cfg.steps // 10),
                                eval_every=cfg.eval_every, max_seconds=cfg.max_seconds)
        result = train(model, lambda m, b: m(**b).loss, next_batch, settings,
                       Segment(reporter, tags={"run": name}, step0=k * cfg.steps), evaluate)
        if result.status == "diverged":
            raise UserError(f"The {name} model: {result.message}")
        if result.status == "time limit":  # the other model would get a different budget: no fair comparison
            raise UserError(f"The {name} model {result.message}. Both must train the same steps: lower the steps "
                            "or raise the time limit.")
        if result.status == "stopped":
            return StageResult(None, {**facts, "final": final}, "stopped")
        final[name] = result.final_eval["eval_loss"]
        reporter.set_info(final=dict(final))
    # Flat keys too, one number each: what the room's view and a lesson's check read.
    return StageResult(None, {**facts, "final": final, **{f"eval_loss/{k}": v for k, v in final.items()}})


def steps_to_match(records: list[dict]) -> float | None:
    """The step at which the cleaned model's validation loss first reached the raw model's final one
    (linear between evaluations), or None when it never did: "cleaning got there this much sooner"."""
    curves = {run: [(r["part_step"], r["eval_loss"]) for r in records if r.get("run") == run and "eval_loss" in r]
              for run in RUNS}
    if not curves["raw"] or len(curves["cleaned"]) < 2:
        return None
    target = curves["raw"][-1][1]
    for (s0, v0), (s1, v1) in zip(curves["cleaned"], curves["cleaned"][1:]):
        if v1 <= target:
            return s1 if v0 == v1 else s0 + (s1 - s0) * (v0 - target) / (v0 - v1)
    return None


def cleaning_gap(cfg: CompareConfig, reporter: Reporter) -> StageResult:
    """The Data page's headline ("What cleaning buys"), as its first screen shows it before anyone trains:
    the default crawl, cleaned with the default pipeline, then `compare` with `cfg`."""
    reporter.prepare("building and cleaning the default crawl", 0, 2)
    crawl = build_crawl(CrawlConfig())
    reporter.prepare("building and cleaning the default crawl", 1, 2)
    cleaned = clean(crawl, CleaningConfig())
    reporter.prepare("building and cleaning the default crawl", 2, 2)
    return compare(cfg, reporter, train_texts(crawl, cleaned, budget=cfg.budget))


# Recorded with the page's defaults (the quick-demo preset), seed 0: `python -m engine demo data-cleaning-gap`.
demos.register("data-cleaning-gap", cleaning_gap, CompareConfig(),
               keep=("final", "uniform_loss", "vocab_size", "train_chars", "heldout_chars", "note"))
