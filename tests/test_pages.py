"""AppTest: each page renders, trains, and shows clear messages for bad input."""
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture(autouse=True)
def fresh_resources():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def open_page(page: str, params: dict | None = None, timeout: float = 30) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    at.run()
    if page != "home":
        at.switch_page(f"app_pages/{page}.py")
        at.run()
    assert not at.exception, at.exception
    return at


def poll(at: AppTest, done, timeout: float = 90) -> None:
    """`run_every` never fires in AppTest: rerun until `done(at)` or the deadline."""
    end = time.time() + timeout
    while time.time() < end:
        at.run()
        assert not at.exception, at.exception
        if done(at):
            return
        time.sleep(0.3)
    raise AssertionError("timed out; page shows: " + " | ".join(m.value for m in at.markdown)[:2000])


def texts(at: AppTest) -> str:
    return " ".join([m.value for m in at.markdown] + [m.value for m in at.success] + [m.value for m in at.error]
                    + [m.value for m in at.warning] + [m.value for m in at.caption] + [m.value for m in at.info])


def test_home_shows_the_pipeline_and_links_every_built_page():
    at = open_page("home")
    assert at.title[0].value == "LLM Training Explorer"
    assert "Pretraining" in at.get("graphviz_chart")[0].proto.spec
    assert "trained live" in texts(at)


def test_pretraining_trains_streams_metrics_and_offers_the_model():
    at = open_page("pretraining", {"size": "50k", "steps": "60", "eval_every": "20", "sample_every": "40"})
    assert at.number_input(key="pt.steps").value == 60          # the link's settings reach the widgets
    at.button(key="pt_start").click().run()
    assert not at.exception
    poll(at, lambda a: "finished" in texts(a))
    assert at.metric[1].value != "–" and float(at.metric[1].value) < 3.76   # val loss below ln(V)
    assert any("step 40" in m.value for m in at.markdown)                    # a sample arrived
    assert at.button(key=next(b.key for b in at.button if b.key.startswith("pt_gen_"))) is not None
    assert at.query_params["steps"] in ("60", ["60"])


def test_both_objectives_train_side_by_side():
    at = open_page("pretraining", {"size": "50k", "steps": "30", "eval_every": "10", "objective": "both"})
    at.button(key="pt_start").click().run()
    poll(at, lambda a: texts(a).count("finished") == 2)
    assert "GPT (next token)" in texts(at) and "BERT (masked token)" in texts(at)
    assert any("<mask>" in t.value for t in at.text_input)       # the BERT tab fills masks


def test_diverging_learning_rate_shows_the_reason_and_the_page_stays_usable():
    at = open_page("pretraining", {"size": "50k", "steps": "300", "lr": "10.0"})
    at.button(key="pt_start").click().run()
    poll(at, lambda a: any("lower the learning rate" in e.value for e in a.error))
    assert not at.button(key="pt_start").disabled


def test_bad_link_values_are_ignored_with_a_notice_and_hub_offline_says_so():
    at = open_page("pretraining", {"lr": "fast", "corpus": "hub", "hub_name": "someone/dataset"})
    assert any("lr" in t.value for t in at.toast)
    at.button(key="pt_start").click().run()
    assert any("Cannot reach the Hugging Face hub" in e.value for e in at.error)


def test_upload_corpus_without_a_file_asks_for_one():
    at = open_page("pretraining", {"corpus": "upload"})
    at.button(key="pt_start").click().run()
    assert any("upload" in e.value.lower() for e in at.error)


def test_first_visit_offers_the_baked_base_model():
    at = open_page("pretraining")
    assert "Use the trained model" in [s.value for s in at.subheader]
    at.button(key="pt_gen_baked").click().run()
    assert not at.exception
    assert any(m.value.startswith("> **One morning") for m in at.markdown)
