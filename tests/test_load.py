"""A small workshop against a real `streamlit run app.py`: visitors speak Streamlit's websocket
protocol (tests/visitors.py explains why not browsers). Five at once; then a closed tab."""
import asyncio
import json
import time

import apptest
import pytest
from visitors import Server, Visitor, run_load

pytestmark = pytest.mark.browser
FAST = "size=50k&steps=60&eval_every=20&sample_every=60&warmup=5&max_seconds=20"


def test_five_visitors_at_once_each_see_a_curve_or_their_place_in_the_queue():
    out = run_load(5, FAST, spread=1.0, timeout=90)
    assert not out["errors"] and not out["server_tracebacks"], out
    assert out["lost_jobs"] == [] and out["finished"] == out["clicked"] == 5, out
    assert out["curve_share"] == 1.0, out
    assert out["max_training_at_once"] <= 2, out
    # Five jobs on two slots: someone waited, and every waiting visitor saw a place and a time.
    assert out["queued_sessions"] >= 1 and out["queued_saw_place_and_eta"] == out["queued_sessions"], out
    assert out["threads_after"] <= out["threads_idle"] + 2, out   # job threads end with their jobs


def test_a_closed_tab_stops_its_job_after_the_grace_period_and_frees_the_slot():
    """One slot, a grace period of 2 s (a reload would come back within it). A starts a long run and
    closes the tab for good; B, arriving after, must get the slot within seconds of the grace period
    (not after A's 60 s), and A's run must end as stopped."""
    server = Server({"LLMX_MAX_CONCURRENT_JOBS": "1", "LLMX_VISITOR_GRACE_SECONDS": "2"})
    long = "size=50k&steps=20000&eval_every=50&sample_every=20000&max_seconds=60"

    async def scenario():
        a = Visitor("a", long + "&seed=1")
        await a.open(server.ws_url)
        await a.click("Train")
        assert await a.wait_for(("running",), 60), a.events
        await asyncio.sleep(1)
        await a.close()
        t_closed = time.time()
        b = Visitor("b", FAST + "&seed=2")
        await b.open(server.ws_url)
        await b.click("Train")
        assert await b.wait_for(("done",), 60), b.events
        started = next(t for t, kind, _ in b.events if kind in ("running", "done"))
        await b.close()
        return started - t_closed, a, b

    try:
        wait, a, b = asyncio.run(scenario())
        time.sleep(1)
        runs = {r["seed"]: r for r in server.saved_runs()}
    finally:
        log = server.stop()
    assert not a.errors and not b.errors and "Traceback" not in log, (a.errors, b.errors, log[-2000:])
    assert 2 <= wait < 15, f"B waited {wait:.1f} s for the slot A's closed tab held"
    assert runs[1]["status"] == "stopped" and runs[1]["steps"] < 20_000, runs[1]
    assert runs[2]["status"] == "done", runs[2]


def test_twenty_visitors_through_ray_all_finish_and_no_job_is_lost_and_the_room_sees_them(monkeypatch):
    """The same workshop, twenty at once, each job in a Ray worker of a local Ray (one slot per core);
    then the instructors' room view of that server's run store draws the twenty runs as one chart."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install -r requirements-ray.txt")
    out = run_load(20, FAST, spread=2.0, timeout=300, server_env={"LLMX_RAY_ADDRESS": "local", "RAY_AUTH_MODE": "disabled"})
    assert not out["errors"] and not out["server_tracebacks"], out
    assert out["lost_jobs"] == [] and out["finished"] == out["clicked"] == 20 and out["saved_runs"] == 20, out
    assert out["curve_share"] == 1.0, out
    assert out["queued_sessions"] >= 1 and out["queued_saw_place_and_eta"] == out["queued_sessions"], out
    monkeypatch.setenv("LLMX_RUNS_DIR", out["runs_dir"])
    monkeypatch.setenv("LLMX_ROOM_KEY", "k")
    at = apptest.open_page("app_pages/room.py", {"key": "k"})
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert at.metric[0].value == "20" and len(spec["data"][0]["y"]) == 20
