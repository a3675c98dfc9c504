"""Stages for tests/test_ray.py: a tiny training, and the ways a worker can go wrong.

They live in tests/ (not in engine/, which a deployment runs) and are imported as
`tests.ray_stages`: Ray workers import a task's function by module name, and their working_dir
is the repository, so `tests.ray_stages` imports there as it does here. Each follows the stage
contract of engine.core.report: fn(config, reporter, **inputs) -> StageResult.
"""
from __future__ import annotations

import os
import time

import torch
from tokenizers import Regex, Tokenizer, models, pre_tokenizers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from engine.core import runs
from engine.core.loop import LoopSettings, train
from engine.core.report import StageResult

TEXT = "to be or not to be, that is the question. " * 40


def tiny(cfg: dict, reporter, owner: str | None = None) -> StageResult:
    """A character-level GPT-2 of a few thousand parameters, trained `steps` steps through the
    engine's loop and saved as a run. With `parent` (a run's folder name) it starts from that
    run's weights, as SFT starts from a pretraining run."""
    chars = sorted(set(TEXT))
    tok = PreTrainedTokenizerFast(tokenizer_object=_char_tokenizer(chars), eos_token="\n", pad_token="\n")
    ids = torch.tensor(tok(TEXT)["input_ids"])
    reporter.say("building the model")
    if cfg.get("parent"):
        model, _, _ = runs.load_run(runs.find_run(cfg["parent"]))
    else:
        torch.manual_seed(cfg["seed"])
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=16, n_embd=16, n_layer=1, n_head=2))
    reporter.set_info(params=model.num_parameters(), vocab_size=len(tok), store=str(runs.runs_dir()))
    g = torch.Generator().manual_seed(cfg["seed"])

    def batch(step):
        starts = torch.randint(0, len(ids) - 17, (8,), generator=g)
        return {"input_ids": torch.stack([ids[s:s + 16] for s in starts])}

    def loss_fn(m, b):
        time.sleep(cfg.get("step_seconds", 0))   # lets a test act while the job is running
        return m(input_ids=b["input_ids"], labels=b["input_ids"]).loss

    reporter.prepare("sampling batches", 1, 2)   # any reporting call reaches the page
    reporter.say("training")
    res = train(model, loss_fn, batch, LoopSettings(steps=cfg["steps"], lr=3e-3, eval_every=10 ** 9,
                                                    bf16=False, max_seconds=cfg.get("max_seconds", 60)), reporter)
    reporter.add_sample({"step": res.steps, "text": "sample"})
    path = runs.save_run(model, tok, "pretrain", cfg, [], {"steps": res.steps},
                         name=f"tiny{cfg['seed']}-{cfg['steps']}", parent=cfg.get("parent"), owner=owner)
    status = "stopped" if res.status == "stopped" else "done"
    return StageResult(run=str(path), summary={"steps": res.steps, "pid": os.getpid()}, status=status,
                       message=res.message)


def crash(cfg: dict, reporter) -> StageResult:
    """Ends its own process the way a native library's bug does (SIGABRT)."""
    reporter.emit({"step": 1, "loss": 1.0, "elapsed": 0.0})
    time.sleep(cfg.get("after", 0.5))
    os.abort()


def hang(cfg: dict, reporter) -> StageResult:
    """Stops answering to Stop: a stage stuck in a call that never returns."""
    reporter.emit({"step": 1, "loss": 1.0, "elapsed": 0.0})
    while True:
        time.sleep(1)


def pid(cfg: dict, reporter) -> StageResult:
    """Reports the worker's process id, then runs until stopped (for the kill test)."""
    import engine
    reporter.set_info(pid=os.getpid(), engine=engine.__file__)
    step = 0
    while not reporter.should_stop():
        step += 1
        reporter.emit({"step": step, "loss": 1.0, "elapsed": 0.0})
        time.sleep(0.1)
    return StageResult(status="stopped")


def _char_tokenizer(chars: list[str]) -> Tokenizer:
    vocab = {c: i for i, c in enumerate(["\n"] + [c for c in chars if c != "\n"])}
    t = Tokenizer(models.WordLevel(vocab, unk_token="\n"))
    t.pre_tokenizer = pre_tokenizers.Split(Regex("."), "isolated")
    return t
