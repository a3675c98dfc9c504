"""Issue 19 on the Data page: "what cleaning buys" first (a recorded demo of raw vs cleaned training, and
one click to train it), the filter thresholds and training settings under Advanced, a sentence under every
chart, and plain names ("validation loss", not "val loss")."""
import dataclasses
import json

import apptest
from apptest import poll, texts
from streamlit.testing.v1 import AppTest

from engine import demos
from engine.data import compare
from engine.data.compare import CompareConfig
from engine.data.config import DataConfig

SMALL = {"n_docs": "400"}   # a small crawl renders the page in seconds; the demo does not depend on it
THRESHOLDS = ("min_words", "max_words", "min_mean_word_len", "max_mean_word_len", "max_symbol_ratio",
              "min_line_punct", "min_stop_words", "max_repeated_lines", "shingle_words", "jaccard", "num_perm",
              "heuristics_on_code")
TRAINING = tuple(f"compare_{f.name}" for f in dataclasses.fields(CompareConfig))


def open_page(params: dict | None = None) -> AppTest:
    return apptest.open_page("app_pages/data.py", params, timeout=180)


def chart_ids(at: AppTest) -> list[str]:
    return [c.proto.id for c in at.get("plotly_chart")]


def inside_expanders(at: AppTest) -> set[str]:
    return {n.key for e in at.expander for n in e if getattr(n, "key", None)}


def test_the_recorded_demo_is_small_made_with_the_defaults_and_shows_the_gap():
    demo = demos.load("data-cleaning-gap")
    assert demo is not None, "record it: python -m engine demo data-cleaning-gap"
    assert (demos.DEMO_DIR / "data-cleaning-gap.json").stat().st_size < 200_000
    assert demo["stage_config"] == CompareConfig().to_dict() and demo["status"] == "done"
    final = demo["info"]["final"]
    assert 0.02 < final["raw"] - final["cleaned"] < 0.1                 # bench/RESULTS.md: 0.03-0.05 at 400 steps
    assert compare.steps_to_match(demo["records"]) < CompareConfig().steps   # the same loss in fewer steps


def test_the_defaults_are_the_quick_demo_preset():
    assert list(DataConfig.PRESETS) == ["quick demo", "standard", "thorough"]
    default = DataConfig()
    assert all(getattr(default, k) == v for k, v in DataConfig.PRESETS["quick demo"].items())


def test_first_screen_shows_what_cleaning_buys_before_any_crawl_setting():
    at = open_page(SMALL)
    assert at.header[0].value == "What cleaning buys"
    nodes = [n for n in at._tree if getattr(n, "key", None) or n.type == "plotly_chart"]
    where = {(n.key if getattr(n, "key", None) else n.proto.id): i for i, n in enumerate(nodes)}
    gap = next(i for k, i in where.items() if "dt_compare_demo_gap" in k)
    assert where["dt_compare_what_cleaning_buys"] < gap < where["dt.w_python_docs"]   # invitation, payoff, settings
    assert any("**Recorded**, not live" in c.value for c in at.caption)
    m = {x.label: float(x.value) for x in at.metric if x.label.endswith("validation loss")}
    assert m["cleaned crawl: validation loss"] < m["raw crawl: validation loss"]
    final = demos.load("data-cleaning-gap")["info"]["final"]           # the page quotes the recorded gap
    assert any(f"ends {final['raw'] - final['cleaned']:.3f} nats per character lower" in s.value for s in at.success)


def test_thresholds_and_training_settings_are_folded_under_advanced():
    at = open_page(SMALL)
    folded = inside_expanders(at)
    assert {f"dt.{n}" for n in THRESHOLDS + TRAINING} <= folded
    assert {"dt.w_world", "dt.exact_dedup", "dt.near_dedup", "dt.quality_threshold"}.isdisjoint(folded)
    assert at.slider(key="dt.max_symbol_ratio").label == "Max symbols per word"


def test_every_chart_has_a_sentence_and_no_raw_metric_names_are_shown():
    at = open_page(SMALL)
    notices = [c.value for c in at.caption if "What to notice" in c.value]
    charts = chart_ids(at)
    assert len(charts) == 5           # the demo's curves and gap, the funnel, the vocabulary sweep, the scale bars
    assert len(notices) >= len(charts) + 3          # one under each, and under the sources, removed and scores tables
    assert any("C4 kept about 750 GB" in n for n in notices)            # the funnel's real-world anchor
    assert any("uniform guess over" in n and "nanoGPT" in n for n in notices)
    shown = texts(at) + " ".join(getattr(n, "label", "") or "" for n in at._tree)
    assert "val loss" not in shown and "eval_loss" not in shown


def test_one_click_what_cleaning_buys_trains_the_quick_demo_and_cleaning_wins():
    # Opened from a link with other training settings: the click puts the quick demo's back.
    at = open_page({"compare_steps": "30", "compare_seed": "5"})
    at.button(key="dt_compare_what_cleaning_buys").click().run()
    assert at.number_input(key="dt.compare_steps").value == 400 and at.number_input(key="dt.compare_seed").value == 0
    poll(at, lambda a: "Raw vs cleaned: finished" in texts(a), timeout=400)
    m = {x.label: float(x.value) for x in at.metric if x.label.endswith("validation loss")}
    raw, cleaned = m["raw crawl: validation loss"], m["cleaned crawl: validation loss"]
    assert cleaned < raw - 0.02, m                                       # cleaning wins, in the default seeded run
    assert any("The model trained on cleaned text ends" in s.value for s in at.success)
    demo = demos.load("data-cleaning-gap")["info"]["final"]              # and the recorded demo is what a click gives
    assert abs(raw - demo["raw"]) < 0.01 and abs(cleaned - demo["cleaned"]) < 0.01
    assert not any("dt_compare_demo" in c for c in chart_ids(at))        # the live run took the demo's place
    assert json.loads(next(c for c in at.get("plotly_chart") if "dt_compare_gap" in c.proto.id).proto.spec)["data"]
