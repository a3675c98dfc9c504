import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")

import torch  # noqa: E402

torch.set_num_threads(1)

# app.py makes a page that trains wait for the background imports (ui.preloaded); AppTest opens a page
# script alone, so import them here once, before a page's import can race a preload thread's.
for _name in __import__("app_pages.ui", fromlist=["PRELOAD"]).PRELOAD:
    __import__(_name)


@pytest.fixture(autouse=True)
def fresh_streamlit_resources():
    """Every test gets its own job runner and session resources (st.cache_resource is process-wide)."""
    import streamlit as st

    from app_pages import ui
    st.cache_resource.clear()
    yield
    _stop_jobs(ui.runner())
    st.cache_resource.clear()


def _stop_jobs(runner, timeout: float = 30) -> None:
    """Stop what a test left running: a training thread still inside torch when the interpreter exits
    aborts the process (exit 134), and it would slow the next test."""
    for job in list(runner.jobs.values()):
        job.stop()
    end = time.time() + timeout
    while any(j.active for j in list(runner.jobs.values())) and time.time() < end:
        time.sleep(0.1)


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch):
    """Every test saves its runs in its own folder."""
    monkeypatch.setenv("LLMX_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"
