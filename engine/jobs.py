"""One job runner for every stage: background threads behind a process-wide limit.

A Job is what a page watches: it buffers metric records and samples under a lock, and the
page copies them with `snapshot()`. The runner queues jobs in arrival order behind
`MAX_CONCURRENT_JOBS` slots, tells queued jobs their place, stops a closed session's jobs,
and keeps finished jobs by config key, so a repeated workshop demo replays at once.
"""
from __future__ import annotations

import collections
import itertools
import statistics
import threading
import time
import traceback
from typing import Callable

import torch

from . import limits
from .carbon import LEDGER, EnergyMeter, Footprint
from .config import UserError

ACTIVE = ("queued", "running", "paused")


class Job:
    _ids = itertools.count(1)

    def __init__(self, key: str, fn: Callable[["Job"], str | None], owner: str, label: str,
                 total_steps: int, max_seconds: float, stage: str = "other"):
        self.id = f"job{next(self._ids)}"
        self.key, self.fn, self.owner, self.label, self.stage = key, fn, owner, label, stage
        self.total_steps, self.max_seconds = total_steps, max_seconds
        self.status = "queued"
        self.message = ""
        self.result: str | None = None     # the saved run's folder
        self.records: list[dict] = []
        self.samples: list[dict] = []
        self.info: dict = {}               # stage facts for the page (vocab size, params, ...)
        self.footprint: Footprint | None = None   # energy and CO2 of the run, from codecarbon
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

    # --- the Reporter protocol the training loop talks to -----------------------------------
    def emit(self, record: dict) -> None:
        with self._lock:
            self.records.append(record)

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

    # --- for stages ----------------------------------------------------------------------
    def add_sample(self, sample: dict) -> None:
        with self._lock:
            self.samples.append(sample)

    # --- controls (any thread) -------------------------------------------------------------
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
    def active(self) -> bool:
        return self.status in ACTIVE

    def progress(self) -> tuple[float, float | None]:
        """Fraction done and the seconds left, from the steps done so far."""
        with self._lock:
            step = next((r["step"] for r in reversed(self.records) if "loss" in r), 0)
            elapsed = next((r["elapsed"] for r in reversed(self.records) if "elapsed" in r), 0.0)
        frac = min(1.0, step / max(1, self.total_steps))
        if not self.active:
            return (1.0 if self.status == "done" else frac), 0.0
        eta = elapsed / frac * (1 - frac) if frac > 0 else None
        if eta is not None:
            eta = min(eta, max(0.0, self.max_seconds - elapsed))
        return frac, eta

    def snapshot(self) -> dict:
        """A consistent copy for the page; the worker keeps appending meanwhile."""
        with self._lock:
            return {"id": self.id, "label": self.label, "status": self.status, "message": self.message,
                    "records": list(self.records), "samples": list(self.samples), "info": dict(self.info),
                    "result": self.result, "queue_position": self.queue_position,
                    "queue_eta": self.queue_eta, "footprint": self.footprint, "paused_out": self.paused_out}


def _warm_up(measure_energy: bool) -> None:
    """codecarbon's first start probes the hardware for ~1.4 s: pay it now, not on Train."""
    if measure_energy:
        EnergyMeter().__enter__().stop()


class JobRunner:
    def __init__(self, max_concurrent: int = limits.MAX_CONCURRENT_JOBS,
                 max_per_owner: int = limits.MAX_JOBS_PER_SESSION,
                 keep_finished: int = limits.MAX_FINISHED_JOBS,
                 measure_energy: bool = True):
        self.max_concurrent, self.max_per_owner = max_concurrent, max_per_owner
        self.jobs: dict[str, Job] = {}
        self._waiting: collections.deque[Job] = collections.deque()
        self._running = 0
        self._cond = threading.Condition()
        self._by_key: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._keep = keep_finished
        self._durations: collections.deque[float] = collections.deque([30.0], maxlen=20)
        self.measure_energy = measure_energy
        threading.Thread(target=_warm_up, args=(measure_energy,), daemon=True).start()

    def submit(self, key: str, fn: Callable[[Job], str | None], owner: str, label: str = "",
               total_steps: int = 1, max_seconds: float = limits.MAX_JOB_SECONDS,
               replay: bool = True, stage: str = "other") -> Job:
        """Start `fn(job)` in a thread once a slot frees. `fn` returns the saved run's folder.
        A finished job with the same key is returned as it is (replayed) when `replay`."""
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
            job = Job(key, fn, owner, label, total_steps, max_seconds, stage)
            self.jobs[job.id] = job
            self._waiting.append(job)
            self._update_queue()
        threading.Thread(target=self._run, args=(job,), name=job.id, daemon=True).start()
        return job

    def get(self, job_id: str | None) -> Job | None:
        return self.jobs.get(job_id) if job_id else None

    def stop_owner(self, owner: str) -> int:
        """Stop every job of a session (its tab closed). Returns how many were stopped."""
        with self._cond:
            jobs = [j for j in self.jobs.values() if j.owner == owner and j.active]
        for j in jobs:
            j.stop()
        return len(jobs)

    def stats(self) -> dict:
        with self._cond:
            return {"running": self._running, "queued": len(self._waiting),
                    "threads": sum(1 for j in self.jobs.values() if j.active)}

    def _run(self, job: Job) -> None:
        with self._cond:
            while not job.should_stop() and (self._running >= self.max_concurrent or self._waiting[0] is not job):
                self._cond.wait(0.5)
            self._waiting.remove(job)
            self._update_queue()
            if job.should_stop():
                job.status, job.finished, job.fn = "stopped", time.time(), None
                self._forget_old()
                self._cond.notify_all()
                return
            self._running += 1
        torch.set_num_threads(1)  # per thread; 2 intra-op threads under contention ran ~100x slower
        job.status, job.started = "running", time.time()
        meter = EnergyMeter() if self.measure_energy else None
        status = "done"
        try:
            if meter:
                meter.start()
            job.result = job.fn(job)
            if job.should_stop():
                status = "stopped"
            if job.paused_out:
                job.message = (f"Paused for more than {limits.MAX_PAUSE_SECONDS:.0f} s, so it was stopped to free "
                               "its training slot for others.")
        except UserError as e:
            status, job.message = "failed", str(e)
        except Exception as e:  # a bug, not the user's fault: keep the app alive, say what broke
            status, job.message = "failed", f"{type(e).__name__}: {e}"
            traceback.print_exc()
        finally:
            if meter:  # recorded before the status changes, so a page that sees "done" sees the cost
                job.footprint = meter.stop()
                LEDGER.add(job.owner, job.stage, job.footprint, job.label)
            job.finished = time.time()
            job.status = status
            job.fn = None   # its closure may hold an upload or a model: a finished job keeps its curves only
            with self._cond:
                self._running -= 1
                self._durations.append(job.finished - job.started)
                if job.status == "done" and job.result:
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
