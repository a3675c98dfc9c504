"""The Ray backend against a real Ray: one local instance for the module (bound to 127.0.0.2), its
workers given a run store of their own, as on another machine. The stages are tests/ray_stages.py."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is not installed: pip install -r requirements-ray.txt")

from engine.core import limits
from engine.core.jobs import JobRunner, ThreadBackend
from engine.core.ray_backend import DIED, RayBackend, backend_from_env
from engine.core.report import Task
from tests import ray_stages  # by package name: the workers import it so too

ROOT = Path(__file__).resolve().parent.parent
GRACE = 3.0


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """Two warm workers whose run store is not the app's: every saved run has to travel."""
    worker_store = tmp_path_factory.mktemp("worker-runs")
    ray_tmp = tempfile.mkdtemp(prefix="rayt-", dir="/tmp")   # Ray's logs and sockets (paths < 108 bytes)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_TMPDIR", ray_tmp)
        made = []   # in a thread that then ends, as Streamlit's script threads do: Ray must outlive it
        maker = threading.Thread(target=lambda: made.append(RayBackend(
            "local", warm=2, grace=GRACE, env={"LLMX_RUNS_DIR": str(worker_store)})))
        maker.start()
        maker.join()
        b = made[0]
        b.worker_store = worker_store
        yield b
        b.close()
    shutil.rmtree(ray_tmp, ignore_errors=True)


def runner(backend, measure_energy=False):
    return JobRunner(backend=backend, measure_energy=measure_energy, max_per_owner=10)


def wait(job, until=lambda j: not j.active, timeout=60.0):
    end = time.monotonic() + timeout
    while not until(job):
        assert time.monotonic() < end, f"{job.id} still {job.status}: {job.message}"
        time.sleep(0.05)
    return job


def losses(job):
    return [r["loss"] for r in job.records if "loss" in r]


def last_step(job):
    return max((r["step"] for r in list(job.records)), default=0)


def test_same_losses_as_threads_and_the_run_comes_home(backend, runs_dir):
    task = Task(ray_stages.tiny, {"seed": 3, "steps": 25})
    on_threads = wait(JobRunner(backend=ThreadBackend(1), measure_energy=False).submit("t", task, "me", total_steps=25))
    on_ray = wait(runner(backend).submit("r", task, "me", total_steps=25))
    assert on_threads.status == on_ray.status == "done", (on_threads.message, on_ray.message)
    assert len(losses(on_ray)) == 25 and losses(on_ray) == losses(on_threads)
    # what the stage said, set and sampled reaches the page as on threads
    assert on_ray.message == "training" and on_ray.samples == [{"step": 25, "text": "sample"}]
    assert on_ray.info["params"] == on_threads.info["params"]
    assert {k: on_ray.preparing[k] for k in ("what", "done", "total")} == {"what": "sampling batches", "done": 1,
                                                                           "total": 2}
    # the worker ran in a scratch store; the run it saved is now in the app's store, nowhere else
    assert f"llmx-job-{on_ray.summary['pid']}-" in on_ray.info["store"]
    assert Path(on_ray.result).parent == runs_dir and (Path(on_ray.result) / "model.safetensors").is_file()
    assert on_ray.summary["pid"] != os.getpid() and list(backend.worker_store.iterdir()) == []


def test_the_pretraining_stage_gives_the_same_losses_on_ray(backend, runs_dir):
    pretraining = pytest.importorskip("engine.pretraining")
    task = Task(pretraining.run, pretraining.PretrainConfig(steps=40, eval_every=20, sample_every=40))
    on_threads = wait(JobRunner(backend=ThreadBackend(1), measure_energy=False).submit("t", task, "me", total_steps=40))
    on_ray = wait(runner(backend, measure_energy=True).submit("r", task, "me", total_steps=40))
    assert on_threads.status == on_ray.status == "done", (on_threads.message, on_ray.message)
    assert on_ray.footprint is not None and on_ray.footprint.duration_s > 0   # measured in the worker
    for key in ("loss", "eval_loss"):
        assert [r[key] for r in on_ray.records if key in r] == [r[key] for r in on_threads.records if key in r]
        assert len([r for r in on_ray.records if key in r]) >= 3
    assert [s["text"] for s in on_ray.samples] == [s["text"] for s in on_threads.samples]
    untimed = [{k: v for k, v in j.summary.items() if k != "seconds"} for j in (on_ray, on_threads)]
    assert on_ray.info == on_threads.info and untimed[0] == untimed[1]
    assert Path(on_ray.result).parent == runs_dir and (Path(on_ray.result) / "run.json").is_file()


def stage_tasks():
    """Every stage's default job, at a few steps (the same seed and settings on both backends)."""
    from engine import sft
    from engine.attention import induction
    from engine.cai import config as cai_config
    from engine.cai import run as cai_run
    from engine.carbon import levers
    from engine.data import compare
    from engine.data.cleaning import clean, train_texts
    from engine.data.crawl import CrawlConfig, build_crawl
    from engine.rlhf import recipe
    from engine.rlhf.config import RLHFConfig
    from engine.scaling import config as scaling
    from engine.scaling import experiments
    crawl = build_crawl(CrawlConfig(n_docs=300, seed=2))
    rlhf = RLHFConfig(n_pairs=40, rm_steps=8, steps=4, eval_every=4, batch_size=8, method="dpo")
    return {
        "sft": Task(sft.run, sft.SFTConfig(steps=12, n_train=40, eval_every=6)),
        "rlhf reward model": Task(recipe.run_reward, rlhf),
        "rlhf dpo": Task(recipe.run_policy, rlhf),
        "constitutional ai": Task(cai_run.run, cai_config.CAIConfig(judge_examples=8, n_samples=2, sl_steps=6,
                                                                    n_pairs=16, dpo_steps=2, max_seconds=300)),
        "scaling sweep": Task(experiments.run_sweep, scaling.SweepConfig(n_models=2, min_params=3000, max_params=12000,
                                                                        tokens=20480)),
        "data compare": Task(compare.compare, compare.CompareConfig(steps=8, eval_every=4, batch_size=8, block_size=32,
                                                                    size="50k"),
                             {"texts": train_texts(crawl, clean(crawl), budget=15_000)}),
        "carbon levers": Task(levers.run_levers, levers.CarbonConfig(steps=6, eval_every=3, small_loss=False)),
        "induction": Task(induction.run, induction.InductionConfig(seq_len=24, vocab=16, steps=30, eval_every=15)),
    }


@pytest.mark.parametrize("name", ["sft", "rlhf reward model", "rlhf dpo", "constitutional ai", "scaling sweep",
                                  "data compare", "carbon levers", "induction"])
def test_every_stage_gives_the_same_losses_on_ray_as_on_threads(backend, runs_dir, name):
    task = stage_tasks()[name]
    on_threads = wait(JobRunner(backend=ThreadBackend(1), measure_energy=False).submit("t", task, "me"), timeout=240)
    on_ray = wait(runner(backend).submit("r", task, "me"), timeout=240)
    assert on_threads.status == on_ray.status == "done", (on_threads.message, on_ray.message)
    keys = ("loss", "eval_loss", "eval_accuracy", "val_accuracy", "eval_gold_reward", "induction_score")
    for key in keys:
        assert [r[key] for r in on_ray.records if key in r] == [r[key] for r in on_threads.records if key in r], key
    assert sum("loss" in r for r in on_ray.records) >= 4
    if on_threads.result:   # the run it saved came home, into the app's store
        assert Path(on_ray.result).parent == runs_dir and (Path(on_ray.result) / "run.json").is_file()


def test_a_parent_run_travels_to_the_worker(backend, runs_dir):
    r = runner(backend)
    parent = wait(r.submit("p", Task(ray_stages.tiny, {"seed": 4, "steps": 30}), "me", total_steps=30))
    name = Path(parent.result).name
    child = wait(r.submit("c", Task(ray_stages.tiny, {"seed": 4, "steps": 5, "parent": name}), "me", total_steps=5))
    assert child.status == "done", child.message
    assert json.loads((Path(child.result) / "run.json").read_text())["parent"] == name
    assert losses(child)[0] < losses(parent)[0] - 0.1   # it started from the trained weights
    assert sorted(p.name for p in runs_dir.iterdir() if p.is_dir()) == sorted([name, Path(child.result).name])


def test_a_shared_store_is_used_in_place(backend, monkeypatch):
    """When the app's store is the workers' own (one machine, or one shared mount given as
    LLMX_RUNS_DIR on both sides), the job saves straight into it and nothing travels."""
    monkeypatch.setenv("LLMX_RUNS_DIR", str(backend.worker_store))
    job = wait(runner(backend).submit("s", Task(ray_stages.tiny, {"seed": 5, "steps": 3}), "me", total_steps=3))
    assert job.status == "done", job.message
    assert job.info["store"] == str(backend.worker_store) and Path(job.result).parent == backend.worker_store
    for p in backend.worker_store.iterdir():   # the next tests expect the workers' store empty
        if p.is_dir():
            shutil.rmtree(p)


def test_pause_resume_and_stop_reach_the_worker_within_a_second(backend, monkeypatch):
    job = runner(backend).submit("slow", Task(ray_stages.tiny, {"seed": 6, "steps": 5000, "step_seconds": 0.02}),
                                 "me", total_steps=5000)
    wait(job, lambda j: last_step(j) >= 5)
    job.pause()
    time.sleep(1.5)      # one tick to pass it on, one step to finish, one poll to bring the last steps
    paused_at = last_step(job)
    time.sleep(1.0)
    assert last_step(job) == paused_at and job.status == "paused"
    job.resume()
    wait(job, lambda j: last_step(j) > paused_at, timeout=1.5)
    t = time.monotonic()
    job.stop()
    wait(job, timeout=3)
    assert job.status == "stopped" and time.monotonic() - t < 2.0
    assert job.result and Path(job.result).is_dir()   # a stopped run is saved, as on threads

    # a job left paused is stopped by the app's pause cap, as on threads
    monkeypatch.setattr(limits, "MAX_PAUSE_SECONDS", 1)
    job = runner(backend).submit("cap", Task(ray_stages.tiny, {"seed": 7, "steps": 5000, "step_seconds": 0.02}),
                                 "me", total_steps=5000)
    wait(job, lambda j: last_step(j) >= 2)
    job.pause()
    wait(job, timeout=5)
    assert job.status == "stopped" and job.paused_out


def test_a_closed_tab_stops_its_job_on_the_worker_after_the_grace_period(backend):
    """The app's visitor registry, as when a tab closes: after the grace period the visitor's job on a
    Ray worker is stopped (and saved, as on threads), and another visitor's job goes on."""
    from app_pages.visitors import Visitors
    r = runner(backend)
    gone = Visitors(on_gone=r.stop_owner, grace=1.0)
    leaving = r.submit("leaving", Task(ray_stages.tiny, {"seed": 11, "steps": 5000, "step_seconds": 0.02}),
                       "tab-a", total_steps=5000)
    staying = r.submit("staying", Task(ray_stages.tiny, {"seed": 12, "steps": 150, "step_seconds": 0.02}),
                       "tab-b", total_steps=150)
    gone.attach("tab-a", "session-1")
    wait(leaving, lambda j: last_step(j) >= 5)
    t = time.monotonic()
    gone.detach("tab-a", "session-1")          # the last tab of visitor a closes
    time.sleep(0.5)
    assert leaving.active                     # within the grace period a reload would find it running
    wait(leaving, timeout=5)
    assert leaving.status == "stopped" and 1.0 <= time.monotonic() - t < 3.5 and leaving.result
    assert wait(staying).status == "done", staying.message


def test_a_killed_worker_fails_its_job_only(backend):
    r = runner(backend)
    victim = r.submit("victim", Task(ray_stages.pid, {}), "a")
    other = r.submit("other", Task(ray_stages.tiny, {"seed": 8, "steps": 150, "step_seconds": 0.02}), "b",
                     total_steps=150)
    wait(victim, lambda j: "pid" in j.info and j.records)
    # the worker runs the code Ray shipped as its working_dir, not this checkout
    assert "runtime_resources/working_dir_files" in victim.info["engine"], victim.info["engine"]
    os.kill(victim.info["pid"], signal.SIGKILL)
    wait(victim, timeout=5)
    assert victim.status == "failed" and victim.message == DIED and "press Train" in victim.message
    assert wait(other).status == "done", other.message


def test_a_job_that_crashes_its_process_fails_alone(backend):
    r = runner(backend)
    job = wait(r.submit("crash", Task(ray_stages.crash, {}), "me"), timeout=30)
    assert job.status == "failed" and job.message == DIED
    after = wait(r.submit("after", Task(ray_stages.tiny, {"seed": 9, "steps": 3}), "me", total_steps=3))
    assert after.status == "done", after.message   # this process and Ray go on


def test_a_hung_job_is_ended_by_its_time_limit_and_frees_its_slot(backend, monkeypatch):
    monkeypatch.setenv("LLMX_MAX_CONCURRENT_JOBS", "1")   # one slot: the next job waits for the hung one's
    monkeypatch.setattr(limits, "MAX_CONCURRENT_JOBS", 1)
    r = runner(backend)
    assert r.max_concurrent == 1
    hung = r.submit("hang", Task(ray_stages.hang, {}), "a", max_seconds=1)
    queued = r.submit("next", Task(ray_stages.tiny, {"seed": 10, "steps": 3}), "b", total_steps=3)
    wait(hung, timeout=1 + GRACE + 10)
    assert hung.status == "failed" and "time limit" in hung.message, hung.message
    assert hung.finished - hung.started < 1 + GRACE + 2 and queued.active
    assert wait(queued).status == "done", queued.message


def test_slots_are_the_cluster_cpus_or_the_cap(backend, monkeypatch):
    assert backend.slots() == os.cpu_count()   # a local Ray has one CPU per core
    monkeypatch.setenv("LLMX_MAX_CONCURRENT_JOBS", "1")
    monkeypatch.setattr(limits, "MAX_CONCURRENT_JOBS", 1)
    assert backend.slots() == 1


def test_without_a_cluster_the_app_runs_on_threads():
    assert isinstance(backend_from_env(""), ThreadBackend) and not getattr(backend_from_env(""), "notice", "")
    b = backend_from_env(f"ray://127.0.0.2:{_free_port()}")   # nothing listens there
    assert isinstance(b, ThreadBackend) and "does not answer" in b.notice and "on this server" in b.notice
    b = backend_from_env("127.0.0.2:6379")
    assert isinstance(b, ThreadBackend) and "use local, auto or ray://host:port" in b.notice
    # unset, Ray is never imported
    code = ("import sys; from engine.core.ray_backend import backend_from_env; "
            "print(backend_from_env().name, 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "LLMX_RAY_ADDRESS": ""}, check=False)
    assert out.stdout.split() == ["threads", "False"], out.stderr[-2000:]


LOST_CLIENT = textwrap.dedent("""
    import json, sys, time
    from engine.core.jobs import JobRunner
    from engine.core.ray_backend import RayBackend
    from engine.core.report import Task
    from tests import ray_stages
    b = RayBackend(sys.argv[1], warm=1, energy=False)
    r = JobRunner(backend=b, measure_energy=False)
    job = r.submit("lost", Task(ray_stages.pid, {}), "me")
    while not job.records:
        time.sleep(0.05)
    print("running", flush=True)
    sys.stdin.readline()            # the test ends the cluster, then says so
    t = time.monotonic()
    while job.active:
        time.sleep(0.05)
    out = dict(status=job.status, message=job.message, seconds=time.monotonic() - t, lost=b.lost, notice=b.notice)
    after = r.submit("after", Task(ray_stages.tiny, {"seed": 1, "steps": 3}), "me", total_steps=3)
    while after.active:
        time.sleep(0.05)
    out.update(after=after.status, backend=r.stats()["backend"])
    print(json.dumps(out), flush=True)
""")


def test_a_lost_cluster_fails_running_jobs_within_seconds():
    """A cluster of its own (`ray start --head`, ended by killing its process group: `ray stop` would
    end every Ray on the machine), joined by a separate app process through Ray Client."""
    client_port, gcs_port = _free_port(), _free_port()
    temp = tempfile.mkdtemp(prefix="rayt-", dir="/tmp")   # short: Ray's socket paths must fit 107 bytes
    ray_bin = Path(sys.executable).with_name("ray")
    head = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", "--node-ip-address=127.0.0.2", f"--port={gcs_port}",
         f"--ray-client-server-port={client_port}", f"--dashboard-agent-listen-port={_free_port()}",
         "--num-cpus=1", "--include-dashboard=false", "--object-store-memory=80000000", "--disable-usage-stats",
         f"--temp-dir={temp}"],
        env={**os.environ, "RAY_AUTH_MODE": "disabled"}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    app = None
    try:
        _wait_port(client_port, 60)
        # `auto` as on a cluster node: Ray finds the head (RAY_ADDRESS, else the file `ray start` wrote)
        # and the app joins through the head's Ray Client port.
        app = subprocess.Popen([sys.executable, "-c", LOST_CLIENT, "auto"], cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT), "RAY_ADDRESS": f"127.0.0.2:{gcs_port}",
                                    "LLMX_RAY_CLIENT_PORT": str(client_port)})
        assert app.stdout.readline().strip() == "running", app.stderr.read()[-3000:]
        os.killpg(head.pid, signal.SIGKILL)
        app.stdin.write("lost\n")
        app.stdin.flush()
        out, _ = app.communicate(timeout=180)
        got = json.loads(out.strip().splitlines()[-1])
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGKILL)
        if app and app.poll() is None:
            app.kill()
        shutil.rmtree(temp, ignore_errors=True)
    assert got["status"] == "failed" and "stopped answering" in got["message"] and got["seconds"] < 15, got
    assert got["lost"] and "runs on this server" in got["notice"] and f":{client_port}" in got["notice"]
    assert got["after"] == "done"   # later jobs run on threads in the same app process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.2", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < end, f"nothing answers on 127.0.0.2:{port}"
            time.sleep(0.2)
