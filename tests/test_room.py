"""Issue 18, the room's view: off (with the way to turn it on) without LLMX_ROOM_KEY, closed to a wrong
key, and with the key every finished run of a stage as one scatter, anonymous (no visitor, no free
text typed into a setting), read from the runs' summaries."""
import json
import time

import apptest
import pytest
from apptest import texts

from engine import pretraining
from engine.core.jobs import JobRunner
from engine.core.report import Task
from engine.core.results import RESULTS

KEY = "workshop-key"


def room(monkeypatch, key: str | None, given: str | None = None):
    if key is None:
        monkeypatch.delenv("LLMX_ROOM_KEY", raising=False)
    else:
        monkeypatch.setenv("LLMX_ROOM_KEY", key)
    return apptest.open_page("app_pages/room.py", {"key": given} if given else None)


def points(at) -> list[tuple[float, float]]:
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return list(zip(spec["data"][0]["x"], spec["data"][0]["y"]))


def test_without_a_key_the_room_is_off_and_says_how_to_turn_it_on(monkeypatch):
    at = room(monkeypatch, None)
    assert "LLMX_ROOM_KEY" in at.info[0].value and not at.get("plotly_chart")


def test_a_wrong_key_shows_nothing(monkeypatch):
    at = room(monkeypatch, KEY, "guess")
    assert "not this server's key" in at.error[0].value and not at.get("plotly_chart")


def test_the_rooms_runs_make_one_learning_rate_chart_with_no_one_named(monkeypatch):
    """Five learners each pick a learning rate: the room's chart has their five final losses against it,
    and the dataset name one of them typed is nowhere in what the room keeps or shows."""
    RESULTS.clear()
    runner = JobRunner(max_concurrent=2, measure_energy=False)
    lrs = [3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
    jobs = []
    for i, lr in enumerate(lrs):
        cfg = pretraining.PretrainConfig(size="50k", steps=60, eval_every=20, sample_every=1000, warmup=5, lr=lr,
                                         hub_name="my-private-notes" if i == 0 else "")
        jobs.append(runner.submit(cfg.key(), Task(pretraining.run, cfg, {"owner": f"learner{i}"}),
                                  owner=f"learner{i}", total_steps=60, stage="pretrain"))
    end = time.time() + 180
    while any(j.active for j in jobs) and time.time() < end:
        time.sleep(0.2)
    assert all(j.status == "done" for j in jobs), [(j.status, j.message) for j in jobs]
    rows = RESULTS.rows("pretrain")
    assert len(rows) == 5 and "my-private-notes" not in json.dumps(rows) and "learner" not in json.dumps(rows)
    at = room(monkeypatch, KEY, KEY)
    assert at.metric[0].value == "5"
    assert at.selectbox(key="room_x_pretrain").value == "lr"
    got = sorted(points(at))
    assert [x for x, _ in got] == pytest.approx(lrs)
    assert [y for _, y in got] == pytest.approx([j.summary["eval_loss"] for j in sorted(jobs, key=lambda j: j.config.lr)])
    assert "my-private-notes" not in texts(at)
