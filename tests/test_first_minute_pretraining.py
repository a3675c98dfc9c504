"""Issue 19 on the Pretraining page: the point first (the shipped model's curve and its text before and
after training), Train beside the preset and above the settings, the rest under Advanced, a sentence with
a scale anchor under every chart, plain metric names, and a quick demo that is the default."""

import apptest
from apptest import advanced_keys, chart, notices, order, poll, texts
from streamlit.testing.v1 import AppTest

from engine.pretraining import PretrainConfig

ADVANCED = ("warmup", "seed", "batch_size", "bf16", "max_seconds", "eval_every", "sample_every", "lr", "steps")


def open_page(params: dict | None = None) -> AppTest:
    return apptest.open_page("app_pages/pretraining.py", params, timeout=120)


def test_the_defaults_are_the_quick_demo_and_the_presets_use_one_vocabulary():
    assert list(PretrainConfig.PRESETS) == ["quick demo", "standard", "thorough"]
    default = PretrainConfig()
    assert all(getattr(default, k) == v for k, v in PretrainConfig.PRESETS["quick demo"].items())
    assert "minute" in PretrainConfig.PRESET_NOTES["standard"]      # the standard preset says it takes longer


def test_first_screen_shows_the_shipped_model_before_and_after_then_train_before_the_settings():
    at = open_page()
    seen = order(at)
    first_widget = next(i for i, x in enumerate(seen) if x.startswith("key:"))
    curve = seen.index(next(x for x in seen if x.startswith("chart:") and "pt_baked_curve" in x))
    after = next(i for i, x in enumerate(seen) if x.startswith("md:> **One morning,**"))
    assert curve < first_widget and after < first_widget              # the payoff comes before any setting
    keys = [x[4:] for x in seen if x.startswith("key:")]
    assert keys.index("pt_start") < keys.index("pt.objective") < keys.index("pt.warmup")   # Train above settings
    # The shipped model's text reads as words; the same model at its random start does not.
    before, after = [m.value for m in at.markdown if m.value.startswith("> **One morning,**")][:2]
    words = lambda s: sum(w.strip(".,\\") in {"the", "on", "to", "a", "was", "went", "The"} for w in s.split())  # noqa: E731
    assert words(after) >= 3 and words(before) == 0, (before, after)
    # The curve: training and validation loss with the uniform guess as its anchor, and what to notice.
    spec = chart(at, "pt_baked_curve")
    assert {t["name"] for t in spec["data"]} == {"training loss", "validation loss"}
    val = next(t["y"] for t in spec["data"] if t["name"] == "validation loss")
    assert val[0] > 4.5 and val[-1] < 0.25                              # from ln 101 down to the baked figure
    said = notices(at)[0]
    assert "a uniform guess over 101 characters" in said
    assert "templated" in said and "nearly memorise" in said            # the low loss is the toy's
    assert "Python's documentation" in said and "1.47 on Shakespeare" in said and "README" in said


def test_secondary_settings_are_under_advanced_and_bf16_keeps_its_full_label():
    at = open_page()
    inside, outside = advanced_keys(at, "pt.")
    assert {f"pt.{name}" for name in ADVANCED} <= inside
    assert outside == {"pt.objective", "pt.size", "pt.corpus"}           # three motivated controls in view
    assert at.toggle(key="pt.bf16").label == "bf16 autocast"


def test_every_chart_has_a_sentence_and_no_raw_metric_names_are_shown():
    at = open_page()
    charts = at.get("plotly_chart")
    assert len(charts) == 2 and len(notices(at)) == len(charts)          # the curve and the next-token bars
    bars = next(n for n in notices(at) if "Each bar" in n)
    assert "uniform guess would give each 1.0%" in bars                  # 1 / 101 characters
    shown = texts(at) + " ".join(getattr(n, "label", "") or "" for n in at._tree)
    assert "val loss" not in shown and "eval_loss" not in shown and "train loss" not in shown


def test_train_with_the_defaults_replaces_the_shipped_curve_with_a_live_one_and_finishes():
    at = open_page()
    at.button(key="pt_start").click().run()
    poll(at, lambda a: "GPT (next token): finished" in texts(a), timeout=240)
    assert not any("pt_baked_curve" in c.proto.id for c in at.get("plotly_chart"))
    spec = chart(at, "pt_curve")
    assert {t["name"] for t in spec["data"] if t["name"].startswith("GPT")} == {
        "GPT (next token): training loss", "GPT (next token): validation loss"}
    labels = [a.get("text", "") for a in spec["layout"].get("annotations", [])]
    assert any("uniform guess" in t for t in labels) and any("shipped model after 2,500 steps" in t for t in labels)
    metrics = {m.label: m.value for m in at.metric}
    # The quick demo still shows its point: 600 steps write readable stories (validation loss ~0.32 at seed 0).
    assert float(metrics["validation loss"]) < 0.45, metrics
    assert "stopped at the time limit" not in texts(at)        # it ran every step
