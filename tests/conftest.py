import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")

import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def fresh_streamlit_resources():
    """Every test gets its own job runner and session resources (st.cache_resource is process-wide)."""
    import streamlit as st
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch):
    """Every test saves its runs in its own folder."""
    monkeypatch.setenv("LLMX_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"
