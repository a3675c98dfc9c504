"""The contract between a stage and the job that runs it.

A stage is a plain function `run(config, reporter, **inputs) -> StageResult`. While it runs it may
do exactly what `Reporter` lists, and nothing else: emit metric records, add samples, set facts
for the page, say one line about what it is doing, report how far a preparation has got, ask
whether to stop, wait while paused. When it ends it returns one `StageResult`. Everything crossing this line is plain data (dicts, lists,
numbers, strings, small arrays), so the same stage runs in a thread of the web server, in the
command line, in a test, or in a worker process on another machine (engine.core.backends).

`Recorder` is the simplest reporter (CLI, tests, benchmarks); `Segment` is one part of a stage
that runs several trainings in turn (the loop of each part counts its own steps; the job's
progress spans them all).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Protocol


class Reporter(Protocol):
    def emit(self, record: dict) -> None:
        """A metric record: {"step": int, "loss": float, "elapsed": float, ...} or an evaluation."""

    def add_sample(self, sample: dict) -> None:
        """Something to show beside the curve: generated text, guesses, attention maps."""

    def set_info(self, **facts: Any) -> None:
        """Facts for the page, merged by key; a value is replaced whole, never changed in place."""

    def say(self, message: str) -> None:
        """One line on what the stage is doing now (shown while it runs)."""

    def prepare(self, what: str, done: float, total: float) -> None:
        """How far work before (or between) the training steps has got, e.g. ("labelling pairs",
        120, 300): the page shows a bar and an estimate from the first second, never a blank wait."""

    def should_stop(self) -> bool:
        """Asked once per step: the person pressed Stop, closed the tab, or the job ran out of time."""

    def wait_if_paused(self) -> None:
        """Blocks while the person has the job paused."""


@dataclasses.dataclass
class StageResult:
    """What a stage returns. `run` is the saved run's folder (None when the stage saves no model:
    its curves and facts are the result); `summary` is what the run store keeps with it."""
    run: str | None = None
    summary: dict = dataclasses.field(default_factory=dict)
    status: str = "done"          # "done" | "stopped" | "time limit"
    message: str = ""             # how it ended, for the page ("stopped at the time limit ...")

    @property
    def complete(self) -> bool:
        """Finished as configured: a result the job cache may replay to the next visitor."""
        return self.status == "done"


@dataclasses.dataclass(frozen=True)
class Task:
    """A job's work as data: `fn(config, reporter, **kwargs)`, an engine function and its inputs.
    Picklable (fn is a module-level function), so a worker in another process can run it."""
    fn: Callable[..., StageResult]
    config: Any
    kwargs: dict = dataclasses.field(default_factory=dict)

    def __call__(self, reporter: Reporter) -> StageResult:
        return self.fn(self.config, reporter, **self.kwargs)


class Recorder:
    """Keeps everything it is told; never stops or pauses. For the CLI, notebooks, tests and benches."""

    def __init__(self, stop: Callable[[], bool] | None = None):
        self.records: list[dict] = []
        self.samples: list[dict] = []
        self.info: dict = {}
        self.message = ""
        self.preparing: tuple | None = None
        self._stop = stop

    def emit(self, record: dict) -> None:
        self.records.append(record)

    def add_sample(self, sample: dict) -> None:
        self.samples.append(sample)

    def set_info(self, **facts: Any) -> None:
        self.info.update(facts)

    def say(self, message: str) -> None:
        self.message = message

    def prepare(self, what: str, done: float, total: float) -> None:
        self.preparing = (what, done, total)

    def should_stop(self) -> bool:
        return bool(self._stop and self._stop())

    def wait_if_paused(self) -> None:
        pass


class Segment(Recorder):
    """One part of a job that trains several models or phases in turn.

    The part's loop counts its own steps from 1 and its own seconds from 0; the job sees them
    continue from the parts before (`step0`, `seconds0`), so one progress bar and one ETA span the
    whole job, with the part's own step kept as "part_step" and `tags` (which model, phase or
    variant) added to every record. The part keeps its untouched records, facts and samples to
    itself (`records`, `info`, `samples`: what its own saved run holds); with `losses_only` the job
    sees only its training steps. `stop_when(record)` ends the part early (a target loss reached)
    without stopping the job."""

    def __init__(self, job: Reporter, tags: dict | None = None, step0: int = 0, seconds0: float = 0.0,
                 losses_only: bool = False, stop_when: Callable[[dict], bool] | None = None):
        super().__init__()
        self.job, self.tags, self.step0, self.seconds0 = job, tags or {}, step0, seconds0
        self.losses_only, self.stop_when, self.ended = losses_only, stop_when, False

    def emit(self, record: dict) -> None:
        super().emit(record)
        if self.stop_when is not None and self.stop_when(record):
            self.ended = True
        if self.losses_only and "loss" not in record:
            return
        out = {**record, **self.tags}
        if "step" in record:
            out["part_step"], out["step"] = record["step"], record["step"] + self.step0
        if "elapsed" in record:
            out["elapsed"] = record["elapsed"] + self.seconds0
        self.job.emit(out)

    def prepare(self, what: str, done: float, total: float) -> None:
        super().prepare(what, done, total)
        self.job.prepare(what, done, total)   # a part's preparation is the job's: it shows

    def should_stop(self) -> bool:
        return self.ended or self.job.should_stop()

    def wait_if_paused(self) -> None:
        self.job.wait_if_paused()

    @property
    def steps(self) -> int:
        return max((r["step"] for r in self.records if "step" in r), default=0)

    @property
    def seconds(self) -> float:
        return max((r["elapsed"] for r in self.records if "elapsed" in r), default=0.0)


def last(records: list[dict], key: str) -> dict:
    """The newest record that has `key` (an evaluation's metrics), or {}."""
    return next((r for r in reversed(records) if key in r), {})


def progress(records: list[dict], total_steps: int, max_seconds: float, active: bool,
             done: bool) -> tuple[float, float | None]:
    """Fraction done and seconds left, from the steps done so far: (frac, eta or None if unknown)."""
    step = last(records, "loss").get("step", 0)
    elapsed = last(records, "elapsed").get("elapsed", 0.0)
    frac = min(1.0, step / max(1, total_steps))
    if not active:
        return (1.0 if done else frac), 0.0
    if frac <= 0:
        return 0.0, None
    eta = elapsed / frac * (1 - frac)
    return frac, (min(eta, max(0.0, max_seconds - elapsed)) if math.isfinite(eta) else None)
