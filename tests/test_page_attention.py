"""AppTest: the Attention page for the baked GPT and for MiniLM, bad input, and a live induction run."""
import time

import apptest
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from engine.core import runs

BAKED = "pretrain-base-gpt"


def open_page(params: dict | None = None):
    return apptest.open_page("app_pages/attention.py", params, timeout=120)


@pytest.fixture(autouse=True)
def fresh_data_cache():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def notices(at: AppTest) -> str:
    return " ".join(m.value for kind in (at.info, at.warning, at.error) for m in kind)


def iframe_html(at: AppTest) -> str:
    return at.get("iframe")[0].proto.srcdoc


def open_tab(at: AppTest, name: str) -> AppTest:
    at.session_state["att.tab"] = name
    at.run()
    assert not at.exception, at.exception
    return at


def test_baked_gpt_shows_every_view():
    at = open_page({"model": BAKED, "text": "Tom has a black dog. Tom has a black dog."})
    assert at.selectbox(key="att.model").value == BAKED
    assert "GPT-style (causal)" in " ".join(c.value for c in at.caption)
    html = iframe_html(at)
    assert "cdnjs" not in html and '"T"' in html                       # offline head view of the text
    at.segmented_control(key="att.view").set_value("model").run()
    assert not at.exception and "model" in at.query_params["view"]
    open_tab(at, "Heads")
    first = 2 + 1   # the first screen: two annotated heads and the induction panel
    assert len(at.get("plotly_chart")) == first + 4 + 1 and not at.get("iframe")   # grids and one pattern; lazy tabs
    at.selectbox(key="att.layer").set_value(1).run()
    at.selectbox(key="att.head").set_value(2).run()
    open_tab(at, "Step by step")
    assert at.selectbox(key="att.layer").value == 1                     # the same head in every tab
    assert any(m.value.startswith("Layer 1, head 2, query") for m in at.markdown)
    assert len(at.get("plotly_chart")) == first + 6
    at.slider(key="att.temperature").set_value(3.0).run()
    assert not at.exception and at.query_params["temperature"] in ("3.0", ["3.0"])
    open_tab(at, "Switch off")
    at.multiselect(key="att_ablate").set_value([(1, 2), (0, 0)]).run()
    before, after = at.metric[0].value, at.metric[1].value
    assert before != after and float(after) > 0
    assert at.query_params["tab"] in ("Switch off", ["Switch off"])


def test_minilm_is_bidirectional_and_scored_by_embedding_distance():
    at = open_page({"model": "minilm", "text": "The cat sat on the mat because it was warm."})
    assert at.selectbox(key="att.model").value == "minilm"
    assert "bidirectional" in " ".join(c.value for c in at.caption)
    assert '"[CLS]"' in iframe_html(at)
    open_tab(at, "Switch off")
    at.multiselect(key="att_ablate").set_value([(0, h) for h in range(12)]).run()
    assert at.metric[0].label == "embedding moved by" and float(at.metric[0].value) > 0


def test_bad_input_gives_notices_and_typed_html_stays_text():
    at = open_page({"model": BAKED})
    at.text_area(key="att.text").set_value("   ").run()
    assert "empty" in notices(at) and not at.get("iframe")
    at.text_area(key="att.text").set_value("Tom has a dog. " * 10).run()
    assert "only the first 64" in notices(at)
    at.text_area(key="att.text").set_value("Tom has a qu☃ck dog.").run()
    assert "not in this model's vocabulary" in notices(at) and "☃" in notices(at)
    at = open_page({"model": "minilm"})
    at.text_area(key="att.text").set_value("<script>alert(1)</script> <b>bold</b>").run()
    assert not at.exception
    html = iframe_html(at)
    assert '"\\u003c"' in html and html.lower().count("</script") == 4   # "<" is escaped: no token ends a script
    open_tab(at, "Heads")
    pattern = next(c.proto.spec for c in at.get("plotly_chart") if "Layer 0, head 0" in c.proto.spec)
    assert "&lt;" in pattern and '"<"' not in pattern                    # plotly would read "<b>" as markup


def test_unknown_run_in_a_link_falls_back_with_a_notice():
    at = open_page({"model": "pretrain-someone-else", "layer": "40", "tab": "Heads"})
    assert "not available here" in notices(at)
    assert at.selectbox(key="att.layer").value == 0


def test_induction_section_trains_streams_and_replays():
    at = open_page({"tab": "Watch heads form", "steps": "60", "eval_every": "20", "seq_len": "16", "vocab": "8"})
    assert at.select_slider(key="ind.steps").value == 60
    at.button(key="ind_start").click().run()
    assert not at.exception
    end = time.time() + 90
    while time.time() < end and not any("finished" in s.value for s in at.success):
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
    assert any("finished" in s.value for s in at.success), notices(at)
    replay = next(s for s in at.select_slider if s.key.startswith("ind_replay_"))
    assert replay.options == ["0", "20", "40", "60"]
    replay.set_value(20).run()
    assert "Step 20" in str([c.proto for c in at.get("plotly_chart")])
    assert any("· induction ·" in o for o in at.selectbox(key="att.model").options)  # the run can be inspected
    at.selectbox(key="att.model").set_value(runs.list_runs("induction")[0].path.name).run()
    open_tab(at, "Heads")
    keys = [c.key for c in at.get("plotly_chart")]
    assert sum(k.startswith("att_grid_") for k in keys) == 4 and "att_pattern" in keys   # the run's heads, scored
    assert "GPT-style (causal)" in " ".join(c.value for c in at.caption)
