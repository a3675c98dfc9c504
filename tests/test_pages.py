"""AppTest: each page renders, trains, and shows clear messages for bad input."""
import re

import apptest
from apptest import poll, texts
from streamlit.testing.v1 import AppTest


def open_page(page: str, params: dict | None = None, timeout: float = 30) -> AppTest:
    """The app as a link opens it, then the page (AppTest needs the entry script first)."""
    at = apptest.open_page("app.py", params, timeout)
    if page != "home":
        at.switch_page(f"app_pages/{page}.py")
        at.run()
    assert not at.exception, at.exception
    return at


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
    samples = [m.value for m in at.markdown if m.value.startswith("step ")]
    assert any(v.startswith("step 40:") for v in samples)                   # a sample arrived
    assert all(re.match(r"step \d+: \s*\*\*\S.*?\S\*\*", v) for v in samples), samples   # prompt in bold
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
    shown = sum(m.value.startswith("> **One morning") for m in at.markdown)   # the first screen's before and after
    at.button(key="pt_gen_baked").click().run()
    assert not at.exception
    assert sum(m.value.startswith("> **One morning") for m in at.markdown) == shown + 1   # and the generated text
