"""What runs inside a Ray worker for engine.core.ray_backend: the `Worker` actor and the run store's
travel between machines.

A Worker runs one job at a time: `engine.core.jobs.execute` in a thread of its own, reporting to
a Job of its own that the app polls. Runs travel zipped (runs.zip_run / `unzip_run`):
the runs a job names go to the worker with it, the runs it saves come back with its outcome,
unless the worker's run store is the app's (same `store_mark`). This module does not import Ray:
Ray imports it in each worker, by name, as the actor's class.
"""
from __future__ import annotations

import dataclasses
import io
import os
import shutil
import tempfile
import threading
import uuid
import zipfile
from pathlib import Path

from engine.core import runs
from engine.core.jobs import Job, execute

STORE_MARK = ".llmx-store"


def store_mark(root: Path, create: bool = False) -> str:
    """The run store's id, written once into it: the same id on both sides means the same disk."""
    path = Path(root) / STORE_MARK
    if create and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(uuid.uuid4().hex)
    try:
        return path.read_text().strip()
    except OSError:
        return ""


class Worker:
    """A Ray actor that runs one job at a time (wrapped by `ray.remote` in RayBackend). The stage
    reports to a Job of the worker's own (engine.core.jobs), which the app's Job mirrors by polling."""

    def __init__(self):
        self._id, self._job, self._outcome, self._info_sent = None, None, None, None
        self._own_store = os.environ.get("LLMX_RUNS_DIR")   # this worker's own run store setting

    def warm(self, energy: bool) -> str:
        """Import what every stage needs and probe the energy meter once, before a job waits on it.
        Returns the worker's run store mark."""
        import torch
        import transformers
        torch.set_num_threads(1)
        cfg = transformers.GPT2Config(n_layer=1, n_head=1, n_embd=8, n_positions=8, vocab_size=8)
        transformers.GPT2LMHeadModel(cfg)(torch.zeros(1, 4, dtype=torch.long)).logits.sum().backward()
        if energy:   # codecarbon's first start probes the hardware for ~1.4 s
            from engine.core.energy import EnergyMeter
            try:
                EnergyMeter().__enter__().stop()
            except Exception:
                pass   # the job's own meter will say what is wrong
        return store_mark(runs.runs_dir())

    def start(self, job_id: str, task, measure_energy: bool, store: dict) -> None:
        job = Job(job_id, task, owner="", label="", total_steps=1, max_seconds=0)
        job.status = "running"   # as the app's runner sets it: pause() applies to running jobs
        self._id, self._job, self._outcome, self._info_sent = job_id, job, None, None
        threading.Thread(target=self._run, args=(job_id, job, measure_energy, store), daemon=True).start()

    def _run(self, job_id: str, job: Job, measure_energy: bool, store: dict) -> None:
        result, footprint, error, saved = None, None, "", []
        root = runs.runs_dir()
        shared = store_mark(root) == store["mark"]
        try:
            if not shared:   # a scratch store of this job's own: its parents in, everything it saves out
                root = Path(tempfile.mkdtemp(prefix="llmx-job-"))
                for blob in store["parents"]:
                    unzip_run(blob, root)
            before = set(os.listdir(root)) if root.exists() else set()
            os.environ["LLMX_RUNS_DIR"] = str(root)   # one job per process at a time: safe
            result, footprint, error = execute(job.task, job, measure_energy)
            if not shared:   # even a failed job's saved runs go back, as on threads
                saved = [runs.zip_run(p) for p in sorted(root.iterdir())
                         if p.name not in before and (p / "run.json").is_file()]
            # Paths in the result point into this worker's stores: make them the app's.
            result = _moved(result, {str(root): store["runs"], str(runs.ASSET_RUNS): store["assets"]})
        except Exception as e:   # moving runs in or out failed: the job fails, the worker lives on
            error = f"{type(e).__name__} on the worker, moving runs: {e}"
        finally:
            if self._own_store is None:
                os.environ.pop("LLMX_RUNS_DIR", None)
            else:
                os.environ["LLMX_RUNS_DIR"] = self._own_store
            if not shared:
                shutil.rmtree(root, ignore_errors=True)
            if self._id == job_id:
                self._outcome = (result, footprint, error, saved)

    def poll(self, job_id: str, n_records: int, n_samples: int) -> dict | None:
        """What is new since the counts given (info only when it changed); None until `start` of
        this job has run (a threaded actor may run calls out of order)."""
        job = self._job
        if job is None or self._id != job_id:
            return None
        outcome = self._outcome   # first: once it is set, every record is in
        info, sent = job.info, self._info_sent   # set_info replaces the dict: a new one is news
        self._info_sent = info
        return {"records": job.records[n_records:], "samples": job.samples[n_samples:],
                "info": info if info is not sent else None, "message": job.message, "outcome": outcome}

    def control(self, job_id: str, stop: bool, paused: bool) -> None:
        job = self._job
        if job is None or self._id != job_id:
            return
        if stop:
            job.stop()
        elif paused:
            job.pause()
        else:
            job.resume()


def _moved(obj, prefixes: dict[str, str]):
    """`obj` with strings that start with a key of `prefixes` moved to its value (StageResult,
    dicts, lists)."""
    if isinstance(obj, str):
        for old, new in prefixes.items():
            if obj == old or obj.startswith(old + os.sep):
                return new + obj[len(old):]
        return obj
    if isinstance(obj, dict):
        return {k: _moved(v, prefixes) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_moved(v, prefixes) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: _moved(getattr(obj, f.name), prefixes)
                                           for f in dataclasses.fields(obj) if f.init})
    return obj


def unzip_run(blob: bytes, root: Path) -> Path:
    """A run zipped by runs.zip_run, unpacked into `root` under its own folder name (kept as it is
    if that run is there already). Written beside, then renamed: a half-unpacked run is never listed."""
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        name = z.namelist()[0].split("/")[0]
        if not name or name.startswith(".") or any(n.split("/")[0] != name or ".." in n for n in z.namelist()):
            raise ValueError(f"not a run folder: {z.namelist()[:3]}")
        path = Path(root) / name
        if not path.exists():
            tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=root))
            z.extractall(tmp)
            (tmp / name).rename(path)
            shutil.rmtree(tmp, ignore_errors=True)
    return path


def runs_named(task, root: Path) -> list[Path]:
    """The runs in `root` that a task names (a string in its config or inputs that is a run's
    folder name or path), and the parents those name in turn."""
    found, todo = {}, list(_strings((task.config, task.kwargs)))
    while todo:
        name = Path(todo.pop()).name
        path = root / name
        if name and name not in found and (path / "run.json").is_file():
            found[name] = path
            todo.append(runs.read_info(path).parent or "")
    return list(found.values())


def _strings(obj):
    if isinstance(obj, str):
        if len(obj) < 400:   # not an uploaded text
            yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, (list, tuple, set)):
        for v in obj:
            yield from _strings(v)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        yield from _strings(dataclasses.asdict(obj))
