"""Issue 19 on the Model scaling page: the first screen shows both headline effects, recorded (the power law,
and a bigger model getting worse on a small repeated text), each one click from training it again; both
effects show in the default seeded runs; and the page says plainly that the toy's α is not Kaplan's."""
import json

import apptest
from apptest import notices, poll, texts

from app_pages import ui
from engine import demos
from engine.scaling import fits
from engine.scaling.config import OverfitConfig, ScalingConfig, SweepConfig


def open_page(params: dict | None = None):
    return apptest.open_page("app_pages/scaling.py", params, timeout=120)


def overfit_effect(records: list[dict]) -> dict:
    """Per model: its validation loss at the start, best, halfway and at the end, and where it was best."""
    out = {}
    for role in ("small", "large"):
        ev = [r for r in records if r.get("role") == role and "eval_loss" in r]
        best = min(ev, key=lambda r: r["eval_loss"])
        out[role] = {"best": best["eval_loss"], "best_at": ev.index(best) / (len(ev) - 1), "last": ev[-1]["eval_loss"],
                     "half": ev[len(ev) // 2]["eval_loss"], "train_last": ev[-1]["train_eval_loss"]}
    return out


def assert_bigger_is_not_always_better(records: list[dict]) -> None:
    e = overfit_effect(records)
    small, large = e["small"], e["large"]
    assert large["best_at"] < 0.6 and large["last"] - large["best"] > 0.15   # the large one turns up, early
    assert large["train_last"] < large["last"] - 1.0                         # while it memorises the training text
    assert small["last"] <= small["best"] + 0.01 and small["last"] < small["half"]   # the small one keeps falling
    assert small["last"] < large["last"]                                     # and ends better


def test_the_defaults_are_the_quick_demo():
    cfg = ScalingConfig()
    assert list(ScalingConfig.PRESETS) == ["quick demo", "standard", "thorough"]
    assert all(getattr(cfg, k) == v for k, v in ScalingConfig.PRESETS["quick demo"].items())


def test_first_screen_shows_both_recorded_effects_each_one_click_away():
    at = open_page()
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert titles[:2] == ["Final validation loss against size (log-log)",
                          "Training (solid) and validation (dashed) loss"]
    said = notices(at)
    assert len(said) >= len(titles)                                         # every chart has its sentence
    assert said[0].count("Recorded: each point") and "not comparable" in said[0] and "ln V = 4.70" in said[0]
    assert "Recorded: the large model is best at epoch" in said[1] and "and ends better" in said[1]
    assert texts(at).count("**Recorded**, not live") == 2
    assert at.button(key="sc_sweep_headline").label == "Fit a scaling law"
    assert at.button(key="sc_overfit_headline").label == "Bigger isn't always better"


def test_the_recorded_demos_show_the_effects_with_the_default_settings():
    sweep, over = demos.load("scaling-sweep"), demos.load("scaling-overfit")
    assert sweep and over, "record them: python -m engine demo scaling-sweep scaling-overfit"
    for name in ("scaling-sweep", "scaling-overfit"):
        assert (demos.DEMO_DIR / f"{name}.json").stat().st_size < 200_000
    assert SweepConfig.from_dict(sweep["stage_config"]) == SweepConfig()
    assert OverfitConfig.from_dict(over["stage_config"]) == OverfitConfig()
    models = sweep["info"]["models"]
    loss = [m["eval_loss"] for m in models]
    assert len(models) == 4 and loss == sorted(loss, reverse=True)           # bigger is better ...
    law = fits.fit_power_law([m["N (non-embedding)"] for m in models], loss, floor=False, n_boot=20)
    assert 0.02 < law.alpha < 0.2
    assert_bigger_is_not_always_better(over["records"])                     # ... until the data runs out


def test_bigger_isnt_always_better_in_one_click_with_the_default_run():
    at = open_page({"of_large": "50000", "of_epochs": "5"})     # a link with other settings: the click restores them
    at.button(key="sc_overfit_headline").click().run()
    assert not at.exception
    assert at.slider(key="sc.of_epochs").value == 60 and at.select_slider(key="sc.of_large").value == 200_000
    poll(at, lambda a: "Small and large model: finished" in texts(a), timeout=300)
    job = next(j for j in ui.runner().jobs.values() if j.label == "Small and large model")
    assert_bigger_is_not_always_better(job.snapshot()["records"])
    assert any(n.count("The large model is best at epoch") for n in notices(at))   # the first screen shows your run
    # the final losses by role, numbers the room can plot: the large model memorises (recorded: its gap
    # between validation and training loss 1.75 nats, the small one's 0.52)
    gap = {role: job.summary[f"eval_loss/{role}"] - job.summary[f"train_eval_loss/{role}"] for role in ("small", "large")}
    assert gap["large"] > 2 * gap["small"] > 0, gap


def test_fit_a_scaling_law_in_one_click_and_the_table_says_the_exponents_are_not_comparable():
    at = open_page({"n_models": "3", "max_params": "30000"})
    at.button(key="sc_sweep_headline").click().run()
    assert at.slider(key="sc.n_models").value == 4
    poll(at, lambda a: "GPT-2 sweep: finished" in texts(a) and "not comparable." in texts(a), timeout=300)
    job = next(j for j in ui.runner().jobs.values() if j.label == "GPT-2 sweep")
    loss = [m["eval_loss"] for m in job.snapshot()["info"]["models"]]
    assert len(loss) == 4 and loss == sorted(loss, reverse=True)
    shown = texts(at)
    assert "Your α and Kaplan's are not comparable." in shown and "the shape" in shown
    assert "| Kaplan et al. 2020 (BPE tokens of WebText2, models of 768 to 1.5B parameters) |" in shown
    assert "| your GPT-2 sweep (characters, models of 25.5k to 456k, 150k tokens each) | A/N^α |" in shown
