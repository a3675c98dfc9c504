"""Every cap lives in engine/limits.py, is the one the pages and Streamlit's own settings use,
and says what happened when it bites. (The model-size cap: test_engine.py, "too large".)"""
import os
import re
import threading
import time
import tomllib
from pathlib import Path

import apptest
import pytest

from engine.core import limits, runs, textio
from engine.core.config import UserError
from engine.core.jobs import JobRunner
from engine.core.report import StageResult, Task

ROOT = Path(__file__).resolve().parent.parent


def blocks(release: threading.Event, reporter) -> StageResult:
    while not (release.is_set() or reporter.should_stop()):
        time.sleep(0.01)
    return StageResult()


def blocking(release: threading.Event) -> Task:
    return Task(blocks, release)


def test_jobs_per_session_cap_says_how_many_and_what_to_do():
    release = threading.Event()
    runner = JobRunner(max_per_owner=1, measure_energy=False)
    runner.submit("a", blocking(release), owner="me")
    with pytest.raises(UserError, match=r"already have 1 jobs running or queued \(the limit is 1 per person\): stop one"):
        runner.submit("b", blocking(release), owner="me")
    runner.submit("c", blocking(release), owner="someone else")       # others are not affected
    release.set()


def test_queue_cap_says_the_server_is_busy(monkeypatch):
    monkeypatch.setattr(limits, "MAX_QUEUED_JOBS", 1)
    release = threading.Event()
    runner = JobRunner(max_concurrent=1, measure_energy=False)
    first = runner.submit("a", blocking(release), owner="1")
    while first.status != "running":
        time.sleep(0.01)
    runner.submit("b", blocking(release), owner="2")                   # waits: the queue is now full
    with pytest.raises(UserError, match="The server is busy: 1 jobs are queued. Try again in a minute."):
        runner.submit("c", blocking(release), owner="3")
    release.set()


def test_a_job_paused_too_long_stops_and_frees_its_slot(monkeypatch):
    monkeypatch.setattr(limits, "MAX_PAUSE_SECONDS", 0.5)
    runner = JobRunner(max_concurrent=1, measure_energy=False)

    def paused_for_ever(cfg, reporter):
        while not reporter.should_stop():
            reporter.wait_if_paused()
            time.sleep(0.01)
        return StageResult(status="stopped")

    job = runner.submit("a", Task(paused_for_ever, None), owner="me")
    while job.status != "running":
        time.sleep(0.01)
    job.pause()
    waiting = runner.submit("b", Task(lambda cfg, reporter: StageResult(), None), owner="you")
    end = time.time() + 5
    while waiting.status != "done" and time.time() < end:
        time.sleep(0.05)
    assert job.status == "stopped" and "Paused for more than 0 s" in job.message
    assert waiting.status == "done"


def test_upload_cap_is_one_number_for_the_engine_the_widgets_and_streamlit():
    with pytest.raises(UserError, match=r"is 5\.0 MB; the limit is 5 MB\. Upload a shorter excerpt"):
        textio.read_text(b"x" * (limits.MAX_UPLOAD_BYTES + 1), "big.txt")
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    # Streamlit counts MiB; its check must never refuse a file ours accepts (ours says why).
    assert server["maxUploadSize"] * 2**20 >= limits.MAX_UPLOAD_BYTES
    assert limits.MAX_UPLOAD_MB * 2**20 >= limits.MAX_UPLOAD_BYTES > (limits.MAX_UPLOAD_MB - 1) * 2**20
    at = apptest.open_page("app_pages/pretraining.py", {"corpus": "upload"})
    assert at.get("file_uploader")[0].proto.max_upload_size_mb == limits.MAX_UPLOAD_MB
    for page in ("data", "sft", "pretraining"):
        src = (ROOT / "app_pages" / f"{page}.py").read_text()
        assert src.count("file_uploader(") == src.count("max_upload_size=")


def test_pages_take_their_caps_from_limits():
    for page in (ROOT / "app_pages").glob("*.py"):
        src = page.read_text()
        assert not re.search(r"Time limit[^\n]*\b300\b", src), f"{page.name}: use limits.MAX_JOB_SECONDS"
        assert "maxUploadSize" not in src, page.name


def _fake_run(root: Path, i: int, size: int) -> Path:
    p = root / f"pretrain-{i:03d}"
    p.mkdir(parents=True)
    (p / "run.json").write_text("{}")
    (p / "model.safetensors").write_bytes(b"0" * size)
    t = 1_000_000 + i
    os.utime(p, (t, t))
    return p


@pytest.mark.parametrize("count, max_bytes, kept", [
    (3, 10**9, ["pretrain-002", "pretrain-003", "pretrain-004"]),      # by count
    (100, 2500, ["pretrain-003", "pretrain-004"]),                    # by size on disk: 1,000 B each
    (100, 10, ["pretrain-004"]),                                       # the newest run always stays
])
def test_run_store_is_capped_by_count_and_by_bytes(tmp_path, monkeypatch, count, max_bytes, kept):
    monkeypatch.setattr(limits, "MAX_RUNS_ON_DISK", count)
    monkeypatch.setattr(limits, "MAX_RUNS_BYTES", max_bytes)
    for i in range(5):
        _fake_run(tmp_path, i, 1000)
    runs._prune(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == kept
