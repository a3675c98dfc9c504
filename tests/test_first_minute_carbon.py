"""Issue 19 on the Carbon page: the point first (a run here beside GPT-3 and the other published runs, on
one log scale, and the session's totals), the page's own experiment next (its recorded quick demo, one
Run above its settings, the rest under Advanced), a sentence under every chart, page names in the
ledger, and the published ratios said to check the arithmetic, not the papers."""

import apptest
import pytest
from apptest import advanced_keys, chart, every_chart_has_its_sentence, notices, order, texts
from streamlit.testing.v1 import AppTest

from engine import demos
from engine.carbon import levers
from engine.carbon.levers import CarbonConfig
from engine.core import ledger

EXPERIMENT = {"bf16", "ckpt", "small", "small_loss", "steps", "eval_every", "max_seconds", "seed"}


@pytest.fixture(autouse=True)
def fresh_ledger():
    ledger.LEDGER.clear()
    yield
    ledger.LEDGER.clear()


def open_page(params: dict | None = None) -> AppTest:
    return apptest.open_page("app_pages/carbon.py", params, timeout=120)


def test_the_defaults_are_the_quick_demo_and_its_demo_is_recorded():
    assert list(CarbonConfig.PRESETS) == ["quick demo", "standard", "thorough"]
    default = CarbonConfig()
    assert all(getattr(default, k) == v for k, v in CarbonConfig.PRESETS["quick demo"].items())
    assert "longer" in CarbonConfig.PRESET_NOTES["standard"]
    demo = demos.load(levers.DEMO)
    assert demo is not None, "record it: python -m engine demo carbon-levers"
    assert demo["status"] == "done" and (demos.DEMO_DIR / f"{levers.DEMO}.json").stat().st_size < 200_000
    assert demo["stage_config"]["steps"] == default.steps
    done = {d["lever"]: d for d in demo["info"]["levers"]}
    assert list(done) == list(levers.LEVERS) and all(d["steps"] >= d["planned"] or d["reached"] for d in done.values())
    # What the quick demo still shows: checkpointing trades memory for compute; bf16 keeps fewer bytes.
    assert done["ckpt"]["saved_bytes"] < done["fp32"]["saved_bytes"] / 5
    assert done["ckpt"]["footprint"]["energy_kwh"] > done["fp32"]["footprint"]["energy_kwh"]
    assert done["bf16"]["saved_bytes"] < done["fp32"]["saved_bytes"]
    assert done["small"]["params"] < done["fp32"]["params"] / 3 and done["small_loss"]["reached"]


def test_first_screen_puts_a_run_here_beside_published_runs_then_the_experiment_before_its_settings():
    at = open_page()
    seen = order(at)
    first_widget = next(i for i, x in enumerate(seen) if x.startswith("key:"))
    scale = next(i for i, x in enumerate(seen) if x.startswith("chart:") and "cc_scale" in x)
    demo = next(i for i, x in enumerate(seen) if x.startswith("chart:") and "cc_demo_energy" in x)
    assert scale < first_widget and demo < first_widget          # the point and the experiment's result first
    keys = [x[4:] for x in seen if x.startswith("key:")]
    assert keys.index("cc_start") < keys.index("cc.steps") < keys.index("cc.accelerator")   # Run, then settings
    spec = chart(at, "cc_scale")
    names = spec["data"][0]["y"]
    assert names[0] == "a 50-step run here" and "Llama 2, all sizes*" in names
    assert "GPT-3 175B" in names and spec["layout"]["xaxis"]["type"] == "log"
    said = notices(at)[0]
    assert "GPT-3's training used 1,287 MWh" in said and "Patterson et al. 2021" in said
    assert "billion times more" in said
    assert "Recorded with the quick-demo settings, seed 0" in texts(at)


def test_the_experiments_secondary_settings_are_under_advanced():
    at = open_page()
    inside, outside = advanced_keys(at, "cc.")
    assert inside == {"cc.eval_every", "cc.max_seconds", "cc.seed"}
    shown = outside & {f"cc.{k}" for k in EXPERIMENT}
    assert shown == {"cc.bf16", "cc.ckpt", "cc.small", "cc.small_loss", "cc.steps"}
    assert at.session_state["_cc_preset"] == "quick demo"


def test_every_chart_has_a_sentence_and_the_published_ratios_say_what_they_check():
    at = open_page({"preset": "gpt-3"})
    assert every_chart_has_its_sentence(at) and len(at.get("plotly_chart")) >= 3
    energy = next(n for n in notices(at) if "Against the fp32 baseline" in n)
    assert "bf16 autocast" in energy and "noise" in energy
    if demos.load(levers.DEMO)["info"].get("bf16_instructions"):   # why bf16 is faster here: said, not implied
        assert "the one that ran this has them" in energy
    memory = next(n for n in notices(at) if "Gradient checkpointing keeps" in n)
    assert "MiB" in memory
    assert any("this checks the arithmetic, not the paper" in c.value for c in at.caption)
    metric_help = next(m.help for m in at.metric if m.label == "estimate / published")
    assert "not of the paper" in metric_help
    shown = texts(at) + " ".join(getattr(n, "label", "") or "" for n in at._tree)
    for raw in ("val loss", "eval_loss", "Energy by page (stage)"):
        assert raw not in shown, raw
    table = next(d.value for d in at.dataframe if "variant" in d.value.columns)
    assert "final validation loss" in table.columns
