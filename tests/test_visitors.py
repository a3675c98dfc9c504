"""A visitor outlives their websocket session: a reload or a second tab finds the same jobs and
runs, a running job survives a closed tab for the grace period, and a tab closed for good frees
its slots."""
import threading
import time

import apptest
from apptest import poll, texts

from app_pages.visitors import Visitors
from engine.core import runs


def test_the_last_tab_closing_stops_the_visitors_jobs_after_the_grace_period_only():
    gone = []
    v = Visitors(on_gone=gone.append, grace=0.3)
    v.attach("a" * 16, "tab1")
    v.detach("a" * 16, "tab1")          # a reload: the old tab goes ...
    v.attach("a" * 16, "tab2")          # ... and the new one comes within the grace period
    time.sleep(0.5)
    assert gone == []
    v.attach("a" * 16, "tab3")          # a second tab
    v.detach("a" * 16, "tab2")
    time.sleep(0.5)
    assert gone == []                   # one tab still open
    v.detach("a" * 16, "tab3")
    time.sleep(0.5)
    assert gone == ["a" * 16]           # closed for good: its jobs are stopped once
    assert threading.active_count() < 50


def test_a_reload_mid_run_finds_the_same_running_job():
    """(AppTest shares one session between its apps; tests/test_browser.py reloads a real tab.)"""
    params = {"size": "50k", "steps": "400", "eval_every": "50", "sample_every": "1000", "max_seconds": "60"}
    at = apptest.open_page("app_pages/pretraining.py", params)
    at.button(key="pt_start").click().run()
    poll(at, lambda a: any(m.label == "training loss" and m.value != "–" for m in a.metric))
    token = at.query_params["v"]
    again = apptest.open_page("app_pages/pretraining.py", {**params, "v": token})     # the reload
    assert again.query_params["v"] == token
    poll(again, lambda a: "GPT (next token)" in texts(a) and any(p.value for p in a.get("progress")))
    poll(again, lambda a: "finished" in texts(a), timeout=120)
    assert [r for r in runs.list_runs("pretrain", owner=token) if not r.baked]       # saved as theirs
