"""Jobs leave nothing behind: their threads end (codecarbon's included) and the runner keeps a
bounded number of finished jobs, without the task inputs that may hold an upload or a model.
bench/bench_leaks.py measures the same over 100 real training cycles."""
import threading
import time

from engine.core import limits
from engine.core.jobs import JobRunner
from engine.core.report import StageResult, Task


def count(cfg, reporter):
    for step in range(1, 40):
        if reporter.should_stop():
            return StageResult(status="stopped")
        reporter.emit({"step": step, "loss": 1.0 / step})
        time.sleep(0.002)
    return StageResult(f"/runs/{cfg}")


def tiny(key: str) -> Task:
    return Task(count, key)


def wait_idle(runner: JobRunner, timeout: float = 20) -> None:
    end = time.time() + timeout
    while any(j.active for j in runner.jobs.values()) and time.time() < end:
        time.sleep(0.01)


def settle(baseline: int, timeout: float = 10) -> int:
    end = time.time() + timeout
    while threading.active_count() > baseline and time.time() < end:
        time.sleep(0.05)
    return threading.active_count()


def test_start_stop_cycles_leave_no_threads_and_keep_finished_jobs_bounded():
    before = threading.active_count()
    runner = JobRunner(keep_finished=5)          # energy measured, as in the app
    runner.submit("warm", tiny("warm"), owner="o")       # first use: codecarbon's probe, the warm-up thread
    wait_idle(runner)
    baseline = settle(before)                    # once-per-process threads, if any, count as baseline
    for i in range(30):
        job = runner.submit(f"k{i}", tiny(f"k{i}"), owner=f"o{i % 3}")
        if i % 2:
            job.stop()                            # some stopped at once (maybe still queued) ...
        wait_idle(runner)                         # ... the others run to the end
    assert settle(baseline) <= baseline, [t.name for t in threading.enumerate()]
    assert len(runner.jobs) <= 5 and len(runner._by_key) <= 5
    assert all(j.task is None for j in runner.jobs.values()), "finished jobs must not keep their inputs"
    assert runner.stats() == {"running": 0, "queued": 0, "slots": 2, "threads": 0, "backend": "threads"}


def test_the_newest_finished_jobs_and_the_replays_in_use_are_the_ones_kept():
    runner = JobRunner(keep_finished=3, measure_energy=False)
    for key in ("a", "b", "c"):
        runner.submit(key, tiny(key), owner="o")
        wait_idle(runner)
    runner.submit("a", tiny("a"), owner="o")           # a replay: "a" is now the most recently used
    for key in ("d", "e"):
        runner.submit(key, tiny(key), owner="o")
        wait_idle(runner)
    kept = sorted(j.key for j in runner.jobs.values())
    assert kept == ["a", "d", "e"], kept
    assert runner.submit("a", tiny("a"), owner="o").status == "done"   # still replays at once


def test_the_default_cap_comes_from_limits():
    assert JobRunner(measure_energy=False)._keep == limits.MAX_FINISHED_JOBS
