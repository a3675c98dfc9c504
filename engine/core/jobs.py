"""One job runner for every stage: a queue in front of a fixed number of slots.

A `Job` is what a page watches. It is the stage's `Reporter` (engine.core.report): it buffers
records, samples and facts under a lock, and the page copies them with `snapshot()`. The runner
queues jobs in arrival order behind its slots, tells queued jobs their place and wait, caps each
visitor's jobs, and keeps finished jobs by config key, so a repeated workshop demo replays at once.

Where a job's task runs is the backend's business: `ThreadBackend` below runs it in a thread of
this process (the default); `engine.core.ray_backend.RayBackend` in a Ray worker that reports back
to the same Job.
"""
from __future__ import annotations

import collections
import itertools
import statistics
import threading
import time
import traceback
from typing import Any

from engine.core import limits
from engine.core.config import UserError
from engine.core.energy import EnergyMeter, Footprint
from engine.core.ledger import LEDGER
from engine.core.report import StageResult, Task, progress
from engine.core.results import RESULTS

ACTIVE = ("queued", "running", "paused")


class Job:
    _ids = itertools.count(1)

    def __init__(self, key: str, task: Task | None, owner: str, label: str, total_steps: int,
                 max_seconds: float, stage: str = "other"):
        self.id = f"job{next(self._ids)}"
        self.key, self.task, self.owner, self.label, self.stage = key, task, owner, label, stage
        self.config = task.config if task else None   # kept after the task: what a lesson's step checks
        self.total_steps, self.max_seconds = total_steps, max_seconds
        self.status = "queued"
        self.message = ""
        self.result: str | None = None     # the saved run's folder
        self.summary: dict = {}
        self.records: list[dict] = []
        self.samples: list[dict] = []
        self.info: dict = {}               # stage facts for the page (vocab size, params, ...)
        self.footprint: Footprint | None = None   # energy and CO2 of the run, from codecarbon
        self.preparing: dict | None = None  # {"what", "done", "total", "since"}: work before the steps
        self.created = time.time()
        self.started: float | None = None
        self.finished: float | None = None
        self.queue_position = 0
        self.queue_eta = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.paused_out = False            # stopped because it stayed paused too long

    # --- the Reporter contract (engine.core.report) ---------------------------------------------
    def emit(self, record: dict) -> None:
        with self._lock:
            self.records.append(record)

    def add_sample(self, sample: dict) -> None:
        with self._lock:
            self.samples.append(sample)

    def set_info(self, **facts: Any) -> None:
        with self._lock:   # a new dict: a snapshot taken meanwhile keeps the old one whole
            self.info = {**self.info, **facts}

    def say(self, message: str) -> None:
        self.message = message

    def prepare(self, what: str, done: float, total: float) -> None:
        with self._lock:
            # One count (the same total) keeps its start, whatever step it is on: the pace so far
            # gives the estimate.
            same = self.preparing is not None and self.preparing["total"] == total
            since = self.preparing["since"] if same else time.monotonic()
            self.preparing = {"what": what, "done": done, "total": total, "since": since}

    def should_stop(self) -> bool:
        return self._stop.is_set()

    def wait_if_paused(self) -> None:
        end = time.monotonic() + limits.MAX_PAUSE_SECONDS   # a paused job holds a slot: not for ever
        while not self._running.wait(0.2):
            if self._stop.is_set():
                return
            if time.monotonic() > end:
                self.paused_out = True
                self.stop()

    # --- controls (any thread) ----------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        if self.status == "running":
            self._running.clear()
            self.status = "paused"

    def resume(self) -> None:
        if self.status == "paused":
            self.status = "running"
            self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def progress(self) -> tuple[float, float | None]:
        """Fraction done and the seconds left (None until the first step), from the steps so far."""
        with self._lock:
            records = list(self.records)
        return progress(records, self.total_steps, self.max_seconds, self.active, self.status == "done")

    def snapshot(self) -> dict:
        """A consistent copy for the page; the worker keeps appending meanwhile."""
        frac, eta = self.progress()
        with self._lock:
            return {"id": self.id, "label": self.label, "status": self.status, "message": self.message,
                    "records": list(self.records), "samples": list(self.samples), "info": self.info,
                    "result": self.result, "summary": self.summary, "queue_position": self.queue_position,
                    "queue_eta": self.queue_eta, "footprint": self.footprint, "paused_out": self.paused_out,
                    "progress": frac, "eta": eta, "preparing": self._preparing()}

    def _preparing(self) -> dict | None:
        """The preparation under way, with seconds left estimated from its pace so far."""
        p = self.preparing
        if p is None or p["done"] >= p["total"] or not self.active:
            return None
        spent = time.monotonic() - p["since"]
        left = spent / p["done"] * (p["total"] - p["done"]) if p["done"] > 0 else None
        return {**{k: p[k] for k in ("what", "done", "total")}, "eta": left}

    # --- the end, set by the runner -------------------------------------------------------------
    def finish(self, result: StageResult | None, footprint: Footprint | None, error: str = "") -> None:
        """Record how the job ended. The footprint is set before the status, so a page that sees
        the job done sees its cost too."""
        self.footprint = footprint
        if result is not None:
            self.result, self.summary = result.run, result.summary
            self.message = result.message or self.message
        if self.paused_out:
            self.message = (f"Paused for more than {limits.MAX_PAUSE_SECONDS:.0f} s, so it was stopped to free "
                            "its training slot for others.")
        self.finished = time.time()
        if error:
            self.message, self.status = error, "failed"
        elif self.should_stop() or (result is not None and result.status == "stopped"):
            self.status = "stopped"
        else:
            self.status = "done"
        self.task = None   # its inputs may hold an upload or pairs: a finished job keeps its curves only


def execute(task: Task, reporter, measure_energy: bool) -> tuple[StageResult | None, Footprint | None, str]:
    """Run one task in the calling thread with one torch thread, measuring its energy. Returns the
    result, the footprint and an error message for the page ("" when it went well): a UserError's
    own message, or the exception's type and text for a bug. Both backends call this."""
    import torch

    torch.set_num_threads(1)  # per thread; 2 intra-op threads under contention ran ~100x slower
    meter = EnergyMeter() if measure_energy else None
    result, error = None, ""
    try:
        if meter:
            meter.start()
        result = task(reporter)
        if not isinstance(result, StageResult):
            raise TypeError(f"{task.fn.__qualname__} returned {type(result).__name__}, not a StageResult")
    except UserError as e:
        error = str(e)
    except Exception as e:  # a bug, not the user's fault: keep the app alive, say what broke
        error = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    return result, (meter.stop() if meter else None), error


class ThreadBackend:
    """Runs each job in the thread the runner gave it, in this process: Streamlit Community
    Cloud's one process. The job itself is the stage's reporter."""
    name = "threads"
    notice = ""   # what the sidebar says about where jobs run ("" when they run where the host asked)

    def __init__(self, slots: int = limits.MAX_CONCURRENT_JOBS):
        self._slots = slots

    def slots(self) -> int:
        return self._slots

    def run(self, job: Job, measure_energy: bool) -> tuple[StageResult | None, Footprint | None, str]:
        return execute(job.task, job, measure_energy)


def warm_up() -> None:
    """codecarbon's first start probes the hardware for ~1.4 s: pay it before the first Train."""
    EnergyMeter().__enter__().stop()


class JobRunner:
    def __init__(self, max_concurrent: int | None = None, max_per_owner: int = limits.MAX_JOBS_PER_SESSION,
                 keep_finished: int = limits.MAX_FINISHED_JOBS, measure_energy: bool = True, backend=None):
        self.backend = backend or ThreadBackend(max_concurrent or limits.MAX_CONCURRENT_JOBS)
        self.max_per_owner = max_per_owner
        self.jobs: dict[str, Job] = {}
        self._waiting: collections.deque[Job] = collections.deque()
        self._running = 0
        self._cond = threading.Condition()
        self._by_key: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._keep = keep_finished
        self._durations: collections.deque[float] = collections.deque([30.0], maxlen=20)
        self.measure_energy = measure_energy

    @property
    def max_concurrent(self) -> int:
        return self.backend.slots()

    def submit(self, key: str, task: Task, owner: str, label: str = "", total_steps: int = 1,
               max_seconds: float = limits.MAX_JOB_SECONDS, replay: bool = True, stage: str = "other") -> Job:
        """Queue `task`; it starts once a slot frees. A finished job with the same key that ran to
        completion is returned as it is (replayed) when `replay`."""
        with self._cond:
            if replay and key in self._by_key:
                self._by_key.move_to_end(key)
                return self._by_key[key]
            mine = [j for j in self.jobs.values() if j.owner == owner and j.active]
            if len(mine) >= self.max_per_owner:
                raise UserError(f"You already have {len(mine)} jobs running or queued (the limit is "
                                f"{self.max_per_owner} per person): stop one or wait for it to finish.")
            if len(self._waiting) >= limits.MAX_QUEUED_JOBS:
                raise UserError(f"The server is busy: {len(self._waiting)} jobs are queued. "
                                "Try again in a minute.")
            job = Job(key, task, owner, label, total_steps, max_seconds, stage)
            self.jobs[job.id] = job
            self._waiting.append(job)
            self._update_queue()
        threading.Thread(target=self._run, args=(job,), name=job.id, daemon=True).start()
        return job

    def get(self, job_id: str | None) -> Job | None:
        return self.jobs.get(job_id) if job_id else None

    def stop_owner(self, owner: str) -> int:
        """Stop every job of a visitor (their tab closed for good). Returns how many were stopped."""
        with self._cond:
            jobs = [j for j in self.jobs.values() if j.owner == owner and j.active]
        for j in jobs:
            j.stop()
        return len(jobs)

    def stats(self) -> dict:
        with self._cond:
            return {"running": self._running, "queued": len(self._waiting), "slots": self.max_concurrent,
                    "threads": sum(1 for j in self.jobs.values() if j.active), "backend": self.backend.name}

    def _run(self, job: Job) -> None:
        """The job's own thread: wait for a slot in arrival order, run, record the end."""
        with self._cond:
            while not job.should_stop() and (self._running >= self.max_concurrent or self._waiting[0] is not job):
                self._cond.wait(0.5)
            self._waiting.remove(job)
            self._update_queue()
            if job.should_stop():   # stopped while queued: it never ran
                job.finish(None, None)
                self._forget_old()
                self._cond.notify_all()
                return
            self._running += 1
            job.status, job.started = "running", time.time()
        self._done(job, *self.backend.run(job, self.measure_energy))

    def _done(self, job: Job, result: StageResult | None, footprint: Footprint | None, error: str) -> None:
        job.finish(result, footprint, error)
        if footprint is not None:
            LEDGER.add(job.owner, job.stage, footprint, job.label)
        if job.status == "done" and result is not None:
            RESULTS.add(job.stage, job.label, job.config, result.summary, result.status)
        with self._cond:
            self._running -= 1
            self._durations.append(job.finished - job.started)
            if job.status == "done" and result is not None and result.complete:
                self._by_key[job.key] = job
                while len(self._by_key) > self._keep:
                    self._by_key.popitem(last=False)
            self._forget_old()
            self._cond.notify_all()

    def _update_queue(self) -> None:
        """Each waiting job's place and wait: the work ahead of it (what the running jobs have left,
        then each job queued before it) shared among the slots. A job is taken to last the recent
        median or its own time limit, whichever is less."""
        typical, now = statistics.median(self._durations), time.time()
        ahead = sum(max(0.0, min(typical, j.max_seconds) - (now - j.started))
                    for j in self.jobs.values() if j.status in ("running", "paused") and j.started)
        for i, j in enumerate(self._waiting):
            j.queue_position = i + 1
            j.queue_eta = max(1.0, ahead / max(1, self.max_concurrent))
            ahead += min(typical, j.max_seconds)

    def _forget_old(self) -> None:
        """Keep at most `_keep` finished jobs (limits.MAX_FINISHED_JOBS): unreplayable ones go
        first, oldest first, then the least recently replayed."""
        done = [j for j in self.jobs.values() if not j.active]
        extra = len(done) - self._keep
        if extra <= 0:
            return
        keyed = set(id(j) for j in self._by_key.values())
        for j in ([j for j in done if id(j) not in keyed] + list(self._by_key.values()))[:extra]:
            self.jobs.pop(j.id, None)
            if self._by_key.get(j.key) is j:
                del self._by_key[j.key]
