"""What runs inside a Ray worker for engine.core.ray_backend: the `Worker` actor and the run store's
travel between machines.

A Worker runs one job at a time: `engine.core.jobs.execute` in a thread of its own, reporting to
a `_Relay` that keeps the stage's reporting calls for the app to poll and make again on its Job. Runs travel zipped (runs.zip_run / `unzip_run`):
the runs a job names go to the worker with it, the runs it saves come back with its outcome,
unless the worker's run store is the app's (same `store_mark`). This module does not import Ray:
Ray imports it in each worker, by name, as the actor's class.
"""
from __future__ import annotations

import dataclasses
import functools
import io
import os
import re
import shutil
import tempfile
import threading
import uuid
import zipfile
from pathlib import Path

from engine.core import runs
from engine.core.jobs import Job, execute, warm_up
from engine.core.report import Reporter

STORE_MARK = ".llmx-store"
RUN_NAME = re.compile(r"[\w.-]{1,200}")
# The contract's methods a stage tells through; the other two it asks (engine.core.report.Reporter).
TELLS = [n for n, f in vars(Reporter).items()
         if callable(f) and not n.startswith("_") and n not in ("should_stop", "wait_if_paused")]
SCRATCH = "llmx-job-"   # a job's own run store in the temp folder: llmx-job-<worker pid>-<random>


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


class _Relay:
    """The worker's Reporter. What a stage tells (the contract's methods that return nothing: emit,
    add_sample, set_info, say, prepare, and any it gains) is kept in order for the app's Job to be
    told in turn; what a stage asks (should_stop, wait_if_paused) a Job of the worker's own answers,
    and the app's Stop and Pause reach that Job through `Worker.control`."""
    def __init__(self, controls: Job):
        self.calls: list[tuple] = []   # (method, args, kwargs); appended by one thread, sliced by another
        self.controls = controls
        for name in TELLS:
            setattr(self, name, functools.partial(self._tell, name))

    def _tell(self, name: str, *args, **kwargs) -> None:
        self.calls.append((name, args, kwargs))

    def should_stop(self) -> bool:
        return self.controls.should_stop()

    def wait_if_paused(self) -> None:
        self.controls.wait_if_paused()


class Worker:
    """A Ray actor that runs one job at a time (wrapped by `ray.remote` in RayBackend)."""

    def __init__(self):
        self._id, self._relay, self._outcome = None, None, None
        self._own_store = os.environ.get("LLMX_RUNS_DIR")   # this worker's own run store setting

    def warm(self, energy: bool) -> str:
        """Import what every stage needs and probe the energy meter once, before a job waits on it.
        Returns the worker's run store mark."""
        import torch
        import transformers
        torch.set_num_threads(1)
        cfg = transformers.GPT2Config(n_layer=1, n_head=1, n_embd=8, n_positions=8, vocab_size=8)
        transformers.GPT2LMHeadModel(cfg)(torch.zeros(1, 4, dtype=torch.long)).logits.sum().backward()
        _clear_scratch()
        if energy:
            try:
                warm_up()   # codecarbon's first start probes the hardware for ~1.4 s
            except Exception:
                pass   # the job's own meter will say what is wrong
        return store_mark(runs.runs_dir())

    def start(self, job_id: str, task, measure_energy: bool, store: dict) -> None:
        controls = Job(job_id, task, owner="", label="", total_steps=1, max_seconds=0)
        controls.status = "running"   # as the app's runner sets it: pause() applies to running jobs
        relay = _Relay(controls)
        self._id, self._relay, self._outcome = job_id, relay, None
        threading.Thread(target=self._run, args=(job_id, task, relay, measure_energy, store),
                         daemon=True).start()

    def _run(self, job_id: str, task, relay: _Relay, measure_energy: bool, store: dict) -> None:
        result, footprint, error, saved = None, None, "", []
        root = runs.runs_dir()
        shared = store_mark(root) == store["mark"]
        try:
            if not shared:   # a scratch store of this job's own: its parents in, everything it saves out
                root = Path(tempfile.mkdtemp(prefix=f"{SCRATCH}{os.getpid()}-"))
                for blob in store["parents"]:
                    unzip_run(blob, root)
            before = set(os.listdir(root)) if root.exists() else set()
            os.environ["LLMX_RUNS_DIR"] = str(root)   # one job per process at a time: safe
            result, footprint, error = execute(task, relay, measure_energy)
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

    def poll(self, job_id: str, n_calls: int) -> dict | None:
        """The stage's reporting calls after the first `n_calls`, and the outcome once the job has
        ended; None until `start` of this job has run (a threaded actor may run calls out of order)."""
        relay = self._relay
        if relay is None or self._id != job_id:
            return None
        outcome = self._outcome   # first: once it is set, every call is in
        return {"calls": relay.calls[n_calls:], "outcome": outcome}

    def control(self, job_id: str, stop: bool, paused: bool) -> None:
        relay = self._relay
        if relay is None or self._id != job_id:
            return
        if stop:
            relay.controls.stop()
        elif paused:
            relay.controls.pause()
        else:
            relay.controls.resume()


def _clear_scratch() -> None:
    """Remove the scratch stores of workers that died mid-job (killed: their own cleanup never ran)."""
    for path in Path(tempfile.gettempdir()).glob(f"{SCRATCH}*-*"):
        pid = path.name[len(SCRATCH):].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)


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
        # Run folders are named stage-time-name in letters, digits, dots and dashes: other strings
        # (a constitution's JSON, a prompt) are not run names, however long.
        if RUN_NAME.fullmatch(name) and name not in found and (path / "run.json").is_file():
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
