"""Precomputed demos: a page's headline run, recorded once into assets/demos/<name>.json so the page's
first screen shows its point before anyone has trained anything (the RLHF page's reward hacking,
the scaling page's U, ...). Made by `python -m engine demo [name ...]`, deterministic under the
run's seed and steps, like the baked runs. A page labels a demo as recorded, never as live.

A stage registers its demo where the stage is defined:
    demos.register("rlhf-reward-hacking", recipe.run_policy, RLHFConfig(...), keep=("before_after",))
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

from engine.core.report import Recorder
from engine.core.runs import ROOT

DEMO_DIR = ROOT / "assets" / "demos"
MAX_RECORDS = 600   # a chart of a few hundred points reads the same and keeps the file small


@dataclasses.dataclass(frozen=True)
class Demo:
    fn: Callable
    config: Any
    kwargs: dict
    keep: tuple[str, ...]    # which info keys the page needs (info can hold large arrays)
    samples: bool


_DEMOS: dict[str, Demo] = {}


def register(name: str, fn: Callable, config, keep: tuple[str, ...] = (), samples: bool = False, **kwargs) -> None:
    _DEMOS[name] = Demo(fn, config, kwargs, keep, samples)


def names() -> list[str]:
    return sorted(_DEMOS)


def _plain(value):
    """JSON-able: numbers (NaN as None), strings, lists and dicts of them; arrays as lists."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value):
        return _plain(dataclasses.asdict(value))
    return value


def _thin(records: list[dict]) -> list[dict]:
    """Every evaluation and event, and training steps evenly thinned to fit MAX_RECORDS."""
    steps = [r for r in records if "loss" in r]
    keep_every = max(1, math.ceil(len(steps) / MAX_RECORDS))
    return [r for r in records if "loss" not in r or r["step"] % keep_every == 0 or r is steps[-1]]


def record(name: str, reporter: Recorder | None = None) -> Path:
    """Run the demo now and write assets/demos/<name>.json."""
    demo = _DEMOS[name]
    rep = reporter or Recorder()
    t0 = time.perf_counter()
    result = demo.fn(demo.config, rep, **demo.kwargs)
    out = {"name": name, "stage_config": demo.config.to_dict(), "status": result.status,
           "message": result.message, "summary": _plain({k: v for k, v in result.summary.items()}),
           "info": _plain({k: rep.info[k] for k in demo.keep if k in rep.info}),
           "samples": _plain(rep.samples) if demo.samples else [], "records": _plain(_thin(rep.records)),
           "seconds": round(time.perf_counter() - t0, 1)}
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    path = DEMO_DIR / f"{name}.json"
    path.write_text(json.dumps(out, separators=(",", ":")))
    return path


def load(name: str) -> dict | None:
    """A recorded demo, or None when it has not been recorded (the page then invites a run)."""
    path = DEMO_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
