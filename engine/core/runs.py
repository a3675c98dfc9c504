"""The run store: every finished run saved the way transformers saves models.

A run folder holds `save_pretrained` output for model and tokenizer, `run.json` (stage,
stage config, parent run, owner, summary) and `metrics.jsonl`. Later stages start from an
earlier run: pretrain -> SFT -> RLHF / constitutional AI. `assets/runs/` holds the baked
defaults (made by `python -m engine bake`), so every page works on a first visit.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import time
import typing
import zipfile
from pathlib import Path

from engine.core import limits
from engine.core.config import UserError
from engine.core.report import StageResult

if typing.TYPE_CHECKING:   # torch and transformers take seconds to import: only where a model is loaded
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from engine.core.loop import LoopResult

ROOT = Path(__file__).resolve().parents[2]   # the repository: engine/core/runs.py
ASSET_RUNS = ROOT / "assets" / "runs"


def runs_dir() -> Path:
    return Path(os.environ.get("LLMX_RUNS_DIR", ROOT / "runs"))


@dataclasses.dataclass
class RunInfo:
    path: Path
    stage: str
    name: str
    config: dict
    summary: dict
    parent: str | None
    owner: str | None
    created: float
    baked: bool

    @property
    def objective(self) -> str:
        return self.config.get("objective", "clm")


def save_run(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, stage: str, config: dict,
             records: list[dict], summary: dict, name: str, parent: str | None = None,
             owner: str | None = None, root: Path | None = None) -> Path:
    root = Path(root or runs_dir())
    path = root / f"{stage}-{time.strftime('%Y%m%d-%H%M%S')}-{name}"
    tmp = path.with_name(path.name + ".partial")   # a half-written run is never listed
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    info = {"stage": stage, "name": name, "config": config, "summary": summary, "parent": parent,
            "owner": owner, "created": time.time()}
    (tmp / "run.json").write_text(json.dumps(info, indent=1))
    with open(tmp / "metrics.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    _prune(root)
    return path


@dataclasses.dataclass
class Trained:
    """A model a stage has just trained, in memory: what `fit` functions return and `save` stores."""
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    loop: LoopResult
    facts: dict    # what the stage knows of it: parameters, data sizes, settings it worked out

    def summary(self, **extra) -> dict:
        """The run's summary: its facts, how the loop ended, and the last evaluation's metrics."""
        return {**self.facts, "status": self.loop.status, "steps": self.loop.steps,
                "seconds": round(self.loop.seconds, 1), **self.loop.final_eval, **extra}

    def result(self, run: str | None = None, **extra) -> StageResult:
        return StageResult(run, self.summary(**extra), self.loop.status, self.loop.message)

    def save(self, stage: str, config: dict, name: str, parent: str | None = None, owner: str | None = None,
             **extra) -> StageResult:
        """Save as a run of `stage` (model, tokenizer, config, metrics) and say so as a StageResult."""
        summary = self.summary(**extra)
        path = save_run(self.model, self.tokenizer, stage, config, self.loop.records, summary, name, parent, owner)
        return StageResult(str(path), summary, self.loop.status, self.loop.message)


def read_info(path: Path) -> RunInfo:
    d = json.loads((Path(path) / "run.json").read_text())
    return RunInfo(Path(path), d["stage"], d["name"], d["config"], d.get("summary", {}), d.get("parent"),
                   d.get("owner"), d.get("created", 0.0), Path(path).parent == ASSET_RUNS)


def list_runs(stage: str | None = None, owner: str | None = None, also: typing.Iterable[str] = ()) -> list[RunInfo]:
    """Baked runs first, then this owner's runs and those named in `also` (folder names: runs a
    visitor got from a job another visitor's identical settings had already run), newest first."""
    out, also = [], set(also)
    for root, baked in ((ASSET_RUNS, True), (runs_dir(), False)):
        found = []
        for p in sorted(Path(root).glob("*/run.json")) if Path(root).exists() else []:
            if p.parent.suffix == ".partial":   # still being written
                continue
            try:
                info = read_info(p.parent)
            except (OSError, ValueError, KeyError):
                continue
            mine = baked or owner is None or info.owner == owner or info.path.name in also
            if (stage is None or info.stage == stage) and mine:
                found.append(info)
        out += sorted(found, key=lambda i: -i.created)
    return out


def find_run(name: str, stage: str | None = None) -> Path:
    """A run by folder name (baked or saved); the newest baked run of `stage` when name is empty."""
    for info in list_runs(stage):
        if info.path.name == name or (not name and info.baked):
            return info.path
    raise UserError(f"No {stage or ''} run named '{name}' here. Pick one from the list, or train one first."
                    if name else f"No default {stage} run is baked into assets/runs: run `python -m engine bake`.")


def load_run(path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, RunInfo]:
    info = read_info(Path(path))
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    from engine.core.models import GLOBAL_RNG
    auto = AutoModelForMaskedLM if info.objective == "mlm" else AutoModelForCausalLM
    with GLOBAL_RNG:  # loading briefly changes how torch builds modules in every thread
        model = auto.from_pretrained(path, attn_implementation="eager", dtype=torch.float32)
    model.eval()
    return model, AutoTokenizer.from_pretrained(path), info


def model_shape(path: str | Path) -> tuple[str, int, int]:
    """(transformers architecture, layers, heads) of a run's model, from its saved config."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(path)
    return (cfg.architectures or [""])[0], cfg.num_hidden_layers, cfg.num_attention_heads


def read_metrics(path: str | Path) -> list[dict]:
    with open(Path(path) / "metrics.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def zip_run(path: str | Path) -> bytes:
    """The run folder as a zip whose top folder loads with `from_pretrained`."""
    path = Path(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(path.iterdir()):
            z.write(f, f"{path.name}/{f.name}")
    return buf.getvalue()


def _prune(root: Path) -> None:
    """Oldest runs go first, until at most MAX_RUNS_ON_DISK runs and MAX_RUNS_BYTES remain
    (the newest run always stays)."""
    runs = sorted((p for p in root.iterdir() if (p / "run.json").exists()), key=lambda p: p.stat().st_mtime)
    sizes = [sum(f.stat().st_size for f in p.iterdir() if f.is_file()) for p in runs]
    total = sum(sizes)
    for i, p in enumerate(runs[:-1]):
        if len(runs) - i <= limits.MAX_RUNS_ON_DISK and total <= limits.MAX_RUNS_BYTES:
            break
        shutil.rmtree(p, ignore_errors=True)
        total -= sizes[i]
