"""The Model scaling page's three ladders of models, each one job: a sweep of sizes on the same
tokens (a scaling law), isoFLOP curves (the compute-optimal size), and a small and a large model
on a little repeated text (when bigger stops helping)."""
from __future__ import annotations

import math

from engine import demos
from engine.core.config import UserError
from engine.core.report import Reporter, StageResult
from engine.core.runs import save_run
from engine.pretraining import PretrainConfig
from engine.scaling.config import IsoConfig, OverfitConfig, SweepConfig
from engine.scaling.plans import iso_plan, overfit_plan, sweep_plan
from engine.scaling.training import fixed_windows, load_corpus, train_ladder


def _sweep(cfg: SweepConfig, reporter: Reporter):
    """Every size on the same tokens, smallest first: (corpus, ladder)."""
    corpus = load_corpus(cfg.corpus, cfg.block_size)
    plan = sweep_plan(cfg, len(corpus.tokenizer))
    reporter.set_info(vocab_size=len(corpus.tokenizer), uniform_loss=math.log(len(corpus.tokenizer)),
                      arch=cfg.arch, plan=[s.row() for s in plan])
    return corpus, train_ladder(reporter, [({}, s, cfg.arch) for s in plan], corpus, cfg, "models")


def run_sweep(cfg: SweepConfig, reporter: Reporter, owner: str | None = None) -> StageResult:
    """Train every size on the same tokens, smallest first. Saves the largest finished model as a
    pretraining run, so pruning and distillation can start from it."""
    corpus, ladder = _sweep(cfg, reporter)
    if ladder.model is None:
        return StageResult(None, {"models": ladder.rows}, ladder.status, ladder.message)
    row = next(r for r in reversed(ladder.rows) if r["status"] == "done")
    pcfg = PretrainConfig(corpus=cfg.corpus, tokenizer="char", arch=cfg.arch, size="custom", n_layer=row["layers"],
                          n_head=row["heads"], n_embd=row["width"], block_size=cfg.block_size,
                          batch_size=cfg.batch_size, lr=row["peak lr"], steps=row["steps"], seed=cfg.seed)
    summary = {"params": ladder.model.num_parameters(), "vocab_size": len(corpus.tokenizer), "objective": "clm",
               "eval_loss": row.get("eval_loss"), "from": "scaling sweep", "models": ladder.rows}
    path = save_run(ladder.model, corpus.tokenizer, "pretrain", pcfg.to_dict(), ladder.records, summary,
                    name=f"sweep-{cfg.arch}-{row['model']}-{cfg.key()[:6]}", owner=owner)
    return StageResult(str(path), summary, ladder.status, ladder.message)


def sweep_demo(cfg: SweepConfig, reporter: Reporter) -> StageResult:
    """The page's recorded sweep: the same training, no saved run (its curves and fit are the result)."""
    _, ladder = _sweep(cfg, reporter)
    return StageResult(None, {"models": ladder.rows}, ladder.status, ladder.message)


def run_isoflop(cfg: IsoConfig, reporter: Reporter) -> StageResult:
    """Several sizes at each compute budget, each given the tokens D = C/(6N) its budget allows."""
    corpus = load_corpus(cfg.corpus, cfg.block_size)
    plan, notes = iso_plan(cfg, len(corpus.tokenizer))
    reporter.set_info(notes=notes, plan=[{**s.row(), "budget": c} for c, s in plan])
    ladder = train_ladder(reporter, [({"budget": c}, s, "gpt2") for c, s in plan], corpus, cfg, "runs")
    return StageResult(None, {"runs": ladder.rows}, ladder.status, ladder.message)


def run_overfit(cfg: OverfitConfig, reporter: Reporter) -> StageResult:
    """A small and a large model on the same few thousand characters, many epochs: the large one
    memorises them (training loss falls, validation loss turns up); the small one cannot."""
    corpus = load_corpus(cfg.corpus, cfg.block_size)
    if len(corpus.train) < cfg.of_chars + cfg.block_size:
        raise UserError(f"The corpus has only {len(corpus.train):,} training characters: ask for fewer.")
    ids = corpus.train[:cfg.of_chars]
    small, large = overfit_plan(cfg, len(corpus.tokenizer))
    reporter.set_info(epoch_tokens=cfg.of_chars, plan=[small.row(), large.row()],
                      uniform_loss=math.log(len(corpus.tokenizer)))
    evals = {"eval_loss": corpus.quick, "train_eval_loss": fixed_windows(ids, cfg.block_size, 64)}
    ladder = train_ladder(reporter, [({"role": "small"}, small, "gpt2"), ({"role": "large"}, large, "gpt2")],
                          corpus, cfg, "models", data_ids=ids, evals=evals, eval_every=max(1, small.steps // 25))
    # The final losses by role as plain numbers too: what the instructors' room view can plot.
    finals = {f"{k}/{r['role']}": r[k] for r in ladder.rows for k in ("eval_loss", "train_eval_loss") if k in r}
    return StageResult(None, {"models": ladder.rows, **finals}, ladder.status, ladder.message)


# The Model scaling page's first screen shows these two before anyone trains (`python -m engine demo
# scaling-sweep scaling-overfit`): the page's defaults (the quick demo), seed 0; both are bounded by
# their steps (the ladder's only time limit is the job's).
demos.register("scaling-sweep", sweep_demo, SweepConfig(), keep=("plan", "models", "uniform_loss", "arch",
                                                                  "vocab_size"))
demos.register("scaling-overfit", run_overfit, OverfitConfig(), keep=("epoch_tokens", "plan", "models",
                                                                              "uniform_loss"))
