"""Training jobs on a Ray cluster: the `ray` backend of engine.core.jobs.JobRunner.

The runner still does what it does for threads (queue, place and estimate, per-visitor caps, stop
on tab close, replays); a backend only decides where a job's task runs, and a stage never knows:
it gets a Reporter and returns a StageResult either way (engine.core.report).

Choosing it, with `LLMX_RAY_ADDRESS` (read by `backend_from_env`):
  unset            threads in this process, as on Streamlit Community Cloud; Ray is not imported.
  local            a Ray instance started by this process, on 127.0.0.2, one CPU per core.
  ray://host:port  a running cluster, through Ray Client (the head's port 10001).
  auto             the cluster `ray start` made this machine part of, also through Ray Client
                   (on the head's port 10001, or LLMX_RAY_CLIENT_PORT).
A cluster is always joined as a Ray Client, never as a full driver: a driver exits 60 s after
losing its cluster, and here the driver would be the web server. A client only loses its
connection: the jobs running there fail with a message within seconds, later jobs run on this
server's threads, and the backend's `notice` says so for the sidebar. A cluster that cannot be
reached at start is handled alike: `backend_from_env` returns the threads backend with a `notice`,
so a room keeps training (more slowly) and the instructor sees why.

How a job runs:
- One job is one actor (`Worker`, one CPU) in a process of its own: a job that kills its process
  (a native abort, the memory killer, kill -9) fails alone. Actors are never restarted and calls
  never retried: a job runs once or fails with a message that says to press Train again.
- Actors stay alive between jobs (`warm`, default one per slot, or LLMX_RAY_WARM_ACTORS): a Ray
  worker imports torch and transformers once, which takes seconds, so a job that finds a warm
  actor shows its first loss about as soon as on threads. A warm actor holds its CPU.
- The actor (engine.core.ray_worker) runs `engine.core.jobs.execute` in a thread of its own and
  keeps every reporting call the stage makes (emit, add_sample, set_info, say, prepare: whatever
  the contract says a stage may tell). It is a threaded actor (`max_concurrency`), so `poll` and
  `control` (stop, pause, resume) answer while the task runs. `RayBackend.run` polls twice a
  second and makes the new calls again on the app's Job (the page sees no difference), and passes
  Stop and Pause on at the next half second; the Job keeps its pause cap as on threads.
- The time limit: the stage's loop stops itself at its limit, as on threads. A worker that hangs
  past the job's `max_seconds` plus `grace` (to save), or stops answering, is ended with
  `ray.kill`, which frees its slot.
- Slots are the cluster's CPUs (asked again every few seconds: nodes may join), or
  `LLMX_MAX_CONCURRENT_JOBS` if that is set and smaller.

Saved runs. A stage saves its runs into `runs.runs_dir()` and reads parent runs from there (SFT
loads a pretraining run by folder name). Each run store carries a mark (a random id in
`.llmx-store`). A worker whose own `runs_dir()` has the app's mark shares the app's disk (the
same machine, or one shared mount given as LLMX_RUNS_DIR on every node) and runs in place.
Otherwise (no shared disk) the job takes the runs it names along, zipped (every string in its
config or inputs that names a run here, and their parents in turn); the worker unpacks them into
a scratch store of its own, runs there, and sends back every run the job saved, zipped, through
Ray's object store, and the app unpacks them into its store. Runs are a few MB, so this costs
milliseconds and needs no setup: any machines that can run Ray will do. The price: a stage that
looks for a run it was not given by name (a cached distillation teacher) does not find it there
and trains it again; a shared mount avoids that and the copies.

Code. Workers get this repository (engine, tests, assets/runs with the baked runs) as Ray's
`working_dir`, uploaded once when the app connects (a few MB; .venv, runs and bench output stay
here). Python packages are not shipped: every node installs requirements-ray.txt, as building
torch per node through runtime_env would take minutes.
"""
from __future__ import annotations

import operator
import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

from engine.core import limits, runs
from engine.core.config import UserError
from engine.core.jobs import Job, ThreadBackend
from engine.core.ray_worker import Worker, runs_named, store_mark, unzip_run

ADDRESS_ENV = "LLMX_RAY_ADDRESS"
ROOT = Path(__file__).resolve().parents[2]   # the repository: every worker's working_dir
# gitignore patterns: a leading "/" anchors them at ROOT, so assets/runs (the baked runs) ships.
EXCLUDES = [".git", ".venv", "__pycache__", "*.pyc", ".pytest_cache", "/runs", "/bench/out"]
POLL_SECONDS = 0.5      # the live view redraws twice a second: no use asking more often
LOST_SECONDS = 10.0     # a worker that has not answered a poll for this long is gone
GRACE_SECONDS = 60.0    # past its time limit, a job gets this long to save before it is killed

DIED = ("The worker running this job stopped before the job finished (its process ended: killed, out of "
        "memory or crashed, or its machine went away). Nothing else was affected: press Train to run it again.")
LOST = ("The Ray cluster stopped answering while this job ran, so the job was lost. Runs saved before are "
        "kept. Press Train to run it again (on this server, until the cluster is back and the app restarted).")


# --- choosing a backend ------------------------------------------------------------------------

_SHARED: dict[str, RayBackend] = {}   # see backend_from_env


def backend_from_env(address: str | None = None, **kw):
    """The backend `LLMX_RAY_ADDRESS` (or `address`) asks for. If Ray cannot be used (not installed,
    unreachable, a wrong address), the threads backend, whose `notice` says why for the sidebar.
    One RayBackend per address and process, whoever asks again (a runner made anew when Streamlit's
    cache is cleared): Ray connects a process once, and its warm actors hold their CPUs."""
    address = (os.environ.get(ADDRESS_ENV, "") if address is None else address).strip()
    if not address:
        return ThreadBackend()
    if address in _SHARED and not _SHARED[address].lost:
        return _SHARED[address]
    try:
        _SHARED[address] = RayBackend(address, **kw)
        return _SHARED[address]
    except Exception as e:   # the app runs all the same
        threads = ThreadBackend()
        threads.notice = (f"Ray cluster not used ({e}): training runs on this server, "
                          f"{threads.slots()} jobs at a time.")
        return threads


def run_on_ray(task, reporter, address: str = "local", max_seconds: float = limits.MAX_JOB_SECONDS):
    """Run one task on Ray and tell `reporter` what it reports, as it comes (`python -m engine
    --ray ADDRESS`). Returns the StageResult; a failed job raises UserError with its message."""
    try:
        backend = RayBackend(address, warm=0, energy=False)
    except Exception as e:   # on the command line, say so and stop: no quiet fallback
        raise UserError(f"Ray cluster not used: {e}") from None
    job = Job("cli", task, "cli", getattr(task.fn, "__module__", ""), 1, max_seconds)
    out = []
    thread = threading.Thread(target=lambda: out.extend(backend.run(job, False)), daemon=True)
    thread.start()
    seen = {"records": 0, "samples": 0, "message": ""}
    try:
        while thread.is_alive():
            thread.join(POLL_SECONDS)
            snap = job.snapshot()
            for r in snap["records"][seen["records"]:]:
                reporter.emit(r)
            for x in snap["samples"][seen["samples"]:]:
                reporter.add_sample(x)
            seen.update(records=len(snap["records"]), samples=len(snap["samples"]))
            if snap["message"] != seen["message"]:
                seen["message"] = snap["message"]
                reporter.say(snap["message"])
    except KeyboardInterrupt:   # Ctrl-C stops the job the way the Stop button does
        job.stop()
        thread.join()
    finally:
        backend.close()
    result, _, error = out
    if error:
        raise UserError(error)
    reporter.set_info(**job.info)
    return result


def _client_address(address: str) -> str:
    """`auto` or ray://host:port, as a Ray Client address whose port answers (checked first:
    Ray Client itself retries an unreachable address for about half a minute)."""
    if address == "auto":
        from ray._private import services  # how `ray.init("auto")` finds the node's cluster
        try:
            gcs = services.canonicalize_bootstrap_address_or_die("auto")
        except ConnectionError as e:
            raise ConnectionError(f"no Ray cluster runs on this machine: {e}") from None
        address = f"ray://{gcs.rsplit(':', 1)[0]}:{os.environ.get('LLMX_RAY_CLIENT_PORT', '10001')}"
    url = urlparse(address)
    if url.scheme != "ray" or not url.hostname or not url.port:
        raise ValueError(f"{ADDRESS_ENV}={address!r}: use local, auto or ray://host:port")
    try:
        socket.create_connection((url.hostname, url.port), timeout=3).close()
    except OSError as e:
        raise ConnectionError(f"{address} does not answer: {e.strerror or e}") from None
    return address


def _in_lasting_thread(fn) -> None:
    """Call `fn` in a thread that lives as long as this process. A local Ray binds the processes it
    starts (GCS, raylet) to the thread that started them (Linux's PR_SET_PDEATHSIG), and Streamlit
    runs each script run in a thread that then ends: started there, Ray's processes would be killed
    a moment later, and this process 60 s after that."""
    started, failed = threading.Event(), []

    def owner():
        try:
            fn()
        except BaseException as e:
            failed.append(e)
        started.set()
        threading.Event().wait()   # never returns

    threading.Thread(target=owner, name="ray-owner", daemon=True).start()
    started.wait()
    if failed:
        raise failed[0]


class _Silent(Exception):
    """The worker has not answered a poll for LOST_SECONDS."""


def _mirror(got: dict, job: Job, seen: dict) -> None:
    """Make on the app's Job the reporting calls the stage made on the worker, in order. Each is
    one of the contract's (ray_worker.TELLS: emit, add_sample, set_info, say, prepare), which Job
    implements."""
    for name, args, kwargs in got["calls"]:
        operator.methodcaller(name, *args, **kwargs)(job)
    seen["calls"] += len(got["calls"])


# --- the backend -------------------------------------------------------------------------------

class RayBackend:
    """Runs each job in a Ray actor; the app's Job mirrors it. Same interface as ThreadBackend."""
    name = "ray"

    def __init__(self, address: str = "local", slots: int | None = None, warm: int | None = None,
                 grace: float = GRACE_SECONDS, energy: bool = True, env: dict | None = None):
        """`warm` actors are started now and kept between jobs (default: one per slot); `energy`
        warms the energy meter in each; `env` adds environment variables for the workers."""
        if address == "local":
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")   # a cluster of this process only
        else:
            # A client whose cluster is gone blocks for this long before it gives up (Ray: 30 s).
            os.environ.setdefault("RAY_CLIENT_RECONNECT_GRACE_PERIOD", "5")
            address = _client_address(address)
        import ray
        self._ray = ray
        self.address, self.grace, self.energy = address, grace, energy
        self._started_ray = not ray.is_initialized()   # else: this process's Ray, started by its owner
        if self._started_ray:
            self._init(address)
        # Workers get this app's limits and offline settings; not its LLMX_RUNS_DIR (a path here: a
        # worker's own store decides whether it shares the app's disk); one OpenMP thread per CPU.
        env = {k: v for k, v in os.environ.items()
               if k.startswith(("LLMX_", "HF_", "CODECARBON_", "TOKENIZERS_")) and k != ADDRESS_ENV
               and k != "LLMX_RUNS_DIR"} | {"OMP_NUM_THREADS": "1"} | (env or {})
        self._actor = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0, max_concurrency=8)(
            Worker).options(runtime_env={"env_vars": env})
        self._cap = slots
        self._cpus, self._cpus_at = 0, 0.0
        self.lost = False
        self.notice = ""                     # for the sidebar, once the cluster is lost (ThreadBackend has one too)
        self.fallback = ThreadBackend()
        self._lock = threading.Lock()
        self._idle: list[tuple] = []         # (actor, its warm() ref), oldest first
        self._alive = 0                      # actors idle or running a job
        warm = int(os.environ.get("LLMX_RAY_WARM_ACTORS", self.slots())) if warm is None else warm
        self._warm = min(warm, self.slots())
        self._top_up()

    def _init(self, address: str) -> None:
        ray = self._ray
        runtime_env = {"working_dir": str(ROOT), "excludes": EXCLUDES}
        if address == "local":
            _in_lasting_thread(lambda: ray.init(
                address="local", num_cpus=os.cpu_count(), include_dashboard=False, object_store_memory=80 * 2**20,
                log_to_driver=False, _node_ip_address="127.0.0.2", runtime_env=runtime_env, configure_logging=False))
        else:
            try:
                ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
            except Exception as e:   # Ray Client raises ConnectionError, or its own errors
                raise ConnectionError(f"{address}: {e}") from None

    # --- the interface the runner uses ---------------------------------------------------------
    def slots(self) -> int:
        if self.lost:
            return self.fallback.slots()
        now = time.monotonic()
        if now - self._cpus_at > 5 and self._ray.is_initialized():   # asked often; nodes come and go rarely
            self._cpus_at = now
            try:
                self._cpus = int(self._ray.cluster_resources().get("CPU", 0))
            except Exception:
                pass   # keep the last figure; a lost cluster shows in the jobs themselves
        cap = self._cap or (int(limits.MAX_CONCURRENT_JOBS) if "LLMX_MAX_CONCURRENT_JOBS" in os.environ else 0)
        return max(1, min(self._cpus, cap) if cap else self._cpus)

    def run(self, job: Job, measure_energy: bool):
        if self.lost:
            return self.fallback.run(job, measure_energy)
        actor, warmed = self._take()
        healthy = False
        try:
            result, footprint, error, healthy = self._drive(actor, warmed, job, measure_energy)
            return result, footprint, error
        finally:
            self._give_back(actor, warmed, healthy)

    def close(self) -> None:
        """End the idle actors (and Ray, if this backend started it). Running jobs are not waited for."""
        with self._lock:
            idle, self._idle, self._warm = self._idle, [], 0
        for key in [k for k, v in _SHARED.items() if v is self]:
            del _SHARED[key]
        for actor, _ in idle:
            self._kill(actor)
        if self._started_ray:
            self._ray.shutdown()

    # --- one job -------------------------------------------------------------------------------
    def _drive(self, actor, warmed, job: Job, measure_energy: bool):
        """Start the job on `actor` and follow it until it ends. Returns (result, footprint, error,
        whether the actor can take another job)."""
        ray = self._ray
        deadline = time.monotonic() + job.max_seconds + self.grace
        app_store = runs.runs_dir()
        try:
            if not self._wait(warmed, deadline):   # a cold actor: its process starts and imports now
                return None, None, self._timed_out(actor, job), False
            mark = store_mark(app_store, create=True)
            parents = [] if ray.get(warmed) == mark else [runs.zip_run(p) for p in runs_named(job.task, app_store)]
            store = {"mark": mark, "parents": parents, "runs": str(app_store), "assets": str(runs.ASSET_RUNS)}
            if not self._wait(actor.start.remote(job.id, job.task, measure_energy, store), deadline):
                return None, None, self._timed_out(actor, job), False
            outcome = self._follow(actor, job, deadline)
            if outcome is None:
                return None, None, self._timed_out(actor, job), False
            result, footprint, error, saved = outcome
            for blob in saved:
                unzip_run(blob, app_store)
            if saved:
                runs._prune(app_store)
            return result, footprint, error, True
        except ray.exceptions.RayActorError:   # kill -9, os.abort(), the memory killer
            return None, None, DIED, False
        except ray.exceptions.RuntimeEnvSetupError as e:
            return None, None, f"Ray could not set up a worker for this job: {e}", False
        except ray.exceptions.RayTaskError as e:   # warm-up or unpickling the task failed there
            return None, None, f"The worker could not start this job: {e.cause!r}", False
        except _Silent:
            if not self._check_cluster():
                return None, None, LOST, False
            self._kill(actor)   # the cluster answers, its worker does not
            return None, None, DIED, False
        except Exception as e:   # Ray Client's lost connection, or something else that broke
            if self._check_cluster():
                return None, None, f"{type(e).__name__}: {e}", False
            return None, None, LOST, False

    def _follow(self, actor, job: Job, deadline: float) -> tuple | None:
        """Poll the running job twice a second, copying what is new into `job` and passing its
        Stop and Pause on; the job's outcome once it ends, or None at the deadline."""
        ray = self._ray
        seen = {"calls": 0}
        sent, pending, answered = (False, False), None, time.monotonic()
        while time.monotonic() < deadline:
            tick = time.monotonic()
            state = (job.should_stop(), job.paused)
            if state != sent:
                actor.control.remote(job.id, *state)
                sent = state
            pending = pending or actor.poll.remote(job.id, seen["calls"])
            done, _ = ray.wait([pending], timeout=POLL_SECONDS)
            if done:
                got, pending, answered = ray.get(done[0]), None, time.monotonic()
                if got is not None:
                    _mirror(got, job, seen)
                    if got["outcome"] is not None:
                        return got["outcome"]
            elif time.monotonic() - answered > LOST_SECONDS:
                raise _Silent()
            if job.paused:
                # The Job keeps its pause cap (it stops a job paused too long), as on threads; time
                # paused does not count toward the time limit, as in the stage's own loop.
                t = time.monotonic()
                job.wait_if_paused()
                deadline += time.monotonic() - t
            else:
                time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - tick)))
        return None

    def _wait(self, ref, deadline: float) -> bool:
        """Wait for `ref` (raising what it raises); False if the deadline passes first."""
        while time.monotonic() < deadline:
            done, _ = self._ray.wait([ref], timeout=POLL_SECONDS)
            if done:
                self._ray.get(done[0])
                return True
        return False

    def _timed_out(self, actor, job: Job) -> str:
        self._kill(actor)
        return (f"The job did not end within its time limit of {job.max_seconds:.0f} s (and {self.grace:.0f} s "
                "more to save), so its worker was ended to free the slot for others. Press Train to try again.")

    def _kill(self, actor) -> None:
        # Not once the client is disconnected: ray.kill would then start a Ray of its own here.
        if not self.lost and self._ray.is_initialized():
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:
                pass   # already gone

    def _check_cluster(self) -> bool:
        """Whether the cluster still answers. If not, later jobs run on threads and `notice` says why."""
        try:
            # is_initialized first: a Ray Client that lost its cluster is no longer initialized, and
            # most ray calls would then try to start a local Ray instead of failing.
            ok = self._ray.is_initialized() and self._ray.cluster_resources() is not None
        except Exception:
            ok = False
        if not ok and not self.lost:
            self.lost = True
            self.notice = (f"The Ray cluster ({self.address}) stopped answering at {time.strftime('%H:%M')}: "
                           f"training now runs on this server, {self.fallback.slots()} jobs at a time.")
        return ok

    # --- the warm pool -------------------------------------------------------------------------
    def _new(self) -> tuple:
        actor = self._actor.remote()
        return actor, actor.warm.remote(self.energy)

    def _take(self) -> tuple:
        with self._lock:
            if self._idle:
                return self._idle.pop(0)
            self._alive += 1
        return self._new()   # none warm: this job waits for a process to start (seconds)

    def _give_back(self, actor, warmed, healthy: bool) -> None:
        with self._lock:
            keep = healthy and len(self._idle) < self._warm and not self.lost
            if keep:
                self._idle.append((actor, warmed))
            else:
                self._alive -= 1
        if not keep:
            self._kill(actor)
            self._top_up()

    def _top_up(self) -> None:
        """Start actors until `warm` of them are alive (a killed one is replaced)."""
        while not self.lost:
            with self._lock:
                if self._alive >= self._warm:
                    return
                self._alive += 1
                self._idle.append(self._new())
