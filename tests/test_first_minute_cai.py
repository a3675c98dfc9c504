"""Issue 19 on the constitutional AI page: the payoff first (the recorded quick demo's before/after bars,
with "SL-CAI does most of the work" beside them), one Train above three settings, the rest under
Advanced, a sentence under every chart, plain names, a quick demo that is the default, and two
one-click experiments that show their effect in the default run."""
import json

import apptest
import pytest
from apptest import advanced_keys, every_chart_has_its_sentence, notices, order, poll, texts, visible
from streamlit.testing.v1 import AppTest

from engine import demos
from engine.cai import run as cai_run
from engine.cai.config import CAIConfig

ADVANCED = ("judge_examples", "n_samples", "sl_helpful", "dpo_steps", "sl_lr", "dpo_lr", "beta", "compare_human",
            "max_seconds", "seed")


def open_page(params: dict | None = None) -> AppTest:
    return apptest.open_page("app_pages/cai.py", params, timeout=120)


def bars(at: AppTest, key: str) -> dict:
    """The before/after chart: {series name: {point: share}}."""
    spec = json.loads(next(c for c in at.get("plotly_chart") if key in c.proto.id).proto.spec)
    return {t["name"]: dict(zip(t["x"], t["y"])) for t in spec["data"]}


def test_the_defaults_are_the_quick_demo_and_the_demo_is_recorded_small():
    assert list(CAIConfig.PRESETS) == ["quick demo", "standard", "thorough"]
    default = CAIConfig()
    assert all(getattr(default, k) == v for k, v in CAIConfig.PRESETS["quick demo"].items())
    assert "minute" in CAIConfig.PRESET_NOTES["standard"] and "longer" in CAIConfig.PRESET_NOTES["standard"]
    demo = demos.load(cai_run.DEMO)
    assert demo is not None, "record it: python -m engine demo cai-quick-demo"
    assert (demos.DEMO_DIR / f"{cai_run.DEMO}.json").stat().st_size < 200_000
    assert {k: v for k, v in demo["stage_config"].items() if k != "max_seconds"} == \
        {k: v for k, v in default.to_dict().items() if k != "max_seconds"}        # the quick demo, bound by steps
    assert demo["status"] == "done"


def test_first_screen_shows_the_recorded_before_and_after_then_train_before_the_settings():
    at = open_page()
    seen = order(at)
    first_widget = next(i for i, x in enumerate(seen) if x.startswith("key:"))
    chart = next(i for i, x in enumerate(seen) if x.startswith("chart:") and "cai_demo_result" in x)
    beside = next(i for i, x in enumerate(seen) if x.startswith("md:**At this scale SL-CAI does most of the work"))
    assert chart < first_widget and beside < first_widget            # the payoff, and its note, before any setting
    keys = [x[4:] for x in seen if x.startswith("key:")]
    assert keys.index("cai_start") < keys.index("cai.sl_steps")       # Train above the settings
    assert keys.index("cai.sl_steps") < next(i for i, k in enumerate(keys) if k.startswith("cai_table_"))
    result = bars(at, "cai_demo_result")
    red = result["violations (red-team prompts)"]
    assert list(red) == ["helpful-only (start)", "after SL-CAI", "after RLAIF"]
    assert red["helpful-only (start)"] > 0.8 and red["after SL-CAI"] < red["helpful-only (start)"] / 2
    said = notices(at)[0]
    assert "at this scale SL-CAI does most of the work" in said and "toy's numbers" in said
    assert "Violations fall from 90%" in said
    assert "Recorded with the quick-demo settings, seed 0" in texts(at)


def test_three_settings_in_view_the_rest_under_advanced():
    at = open_page()
    inside, outside = advanced_keys(at, "cai.")
    assert {f"cai.{name}" for name in ADVANCED} <= inside
    assert outside == {"cai.sl_steps", "cai.n_pairs", "cai.method"}
    assert at.session_state["_cai_preset"] == "quick demo"


def test_every_chart_has_a_sentence_and_no_raw_names_are_shown():
    at = open_page()
    assert every_chart_has_its_sentence(at)
    shown = visible(at)
    for raw in ("eval_loss", "rewards/margins", "eval_accuracy", "val loss", "train loss", "held-out", "held out"):
        assert raw not in shown, raw


@pytest.mark.parametrize("button, check", [
    pytest.param("cai_one_drop", "secret", id="leave-out-the-secret-rule"),
    pytest.param("cai_one_human", "human", id="ai-vs-human-labels"),
])
def test_one_click_experiments_show_their_effect_in_the_default_run(button, check):
    at = open_page()
    at.button(key=button).click().run()
    poll(at, lambda a: "Constitutional AI: finished" in texts(a) or any(e.value for e in a.error), timeout=600)
    assert not any(e.value for e in at.error), [e.value for e in at.error]
    trade = next(d.value for d in at.dataframe if "helpful accuracy" in d.value.columns).set_index("model")
    share = lambda col, row: float(trade.loc[row, col].rstrip("%")) / 100  # noqa: E731
    if check == "secret":
        # Nothing tells the judge the secret matters: the model still tells it, while the insults stop.
        assert "Keep the secret" not in texts(at).split("Constitution of this run:")[-1]
        assert share("secret told", "after RLAIF") >= 0.8, trade
        assert share("insults", "after RLAIF") <= share("insults", "helpful-only (start)") / 2, trade
    else:
        # The same optimisation on simulated human labels: a fourth bar, and both columns of the table.
        assert list(trade.index) == ["helpful-only (start)", "after SL-CAI", "after RLAIF", "after RLHF"]
        assert share("violations", "after RLHF") <= share("violations", "helpful-only (start)") / 2, trade
        vs = next(d.value for d in at.dataframe if "RLHF (simulated human)" in d.value.columns)
        assert not any("not run" in str(v) for v in vs["RLHF (simulated human)"])
