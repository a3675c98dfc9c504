"""Issue 19 on the Instruction tuning page: the point first (the baked base and the baked SFT run
answering the same validation prompts, 0% -> 89%) with the loss-mask strip beside it, Train above the
settings and the rest under Advanced, a sentence with a scale anchor under every chart, plain metric
names, a quick demo that is the default and finishes its steps, and forgetting in one click."""

import apptest
from apptest import advanced_keys, chart, order, poll, texts, visible
from streamlit.testing.v1 import AppTest

from engine import demos, sft
from engine.core import runs
from engine.core.report import Recorder
from engine.sft import SFTConfig

ADVANCED = ("lr", "steps", "batch_size", "warmup", "eval_every", "max_seconds", "seed", "bf16")
SHORT = {"families": "label", "n_train": "60", "steps": "40", "eval_every": "20"}


def open_page(params: dict | None = None) -> AppTest:
    return apptest.open_page("app_pages/sft.py", params, timeout=120)


def test_the_defaults_are_the_quick_demo_and_the_presets_use_one_vocabulary():
    assert list(SFTConfig.PRESETS) == ["quick demo", "standard", "thorough"]
    default = SFTConfig()
    assert all(getattr(default, k) == v for k, v in SFTConfig.PRESETS["quick demo"].items())
    assert "minute" in SFTConfig.PRESET_NOTES["standard"]            # the standard preset says it takes longer
    assert default.steps < default.max_seconds * 10                   # the time limit is a safety net, not the bound


def test_the_recorded_answers_come_from_the_baked_runs_and_are_small():
    assert "sft-base-vs-tuned" in demos.names()
    path = demos.DEMO_DIR / "sft-base-vs-tuned.json"
    assert path.stat().st_size < 200_000
    rec = demos.load("sft-base-vs-tuned")
    rows = rec["info"]["before_after"]
    assert {r["family"] for r in rows} == set(sft.FAMILIES) and rec["info"]["base"] == "pretrain-base-gpt"
    assert sft.accuracy(rows, "base (greedy)") == 0 and sft.accuracy(rows, "tuned (greedy)") >= 0.8
    # Recorded from what ships: the tuned answers are the baked run's own.
    model, tok, _ = runs.load_run(runs.find_run("", "sft"))
    assert sft.answers(model, tok, [r["prompt"] for r in rows[:4]]) == [r["tuned (greedy)"] for r in rows[:4]]


def test_first_screen_shows_before_and_after_then_the_mask_strip_then_train_above_the_settings():
    at = open_page()
    seen = order(at)
    first_widget = next(i for i, x in enumerate(seen) if x.startswith("key:"))
    headline = next(i for i, x in enumerate(seen) if x.startswith("md:#### 0% → 89%"))
    assert headline < seen.index("table") < first_widget                # the payoff comes before any setting
    payoff = next(d.value for d in at.dataframe if "after SFT" in d.value.columns)
    assert len(payoff) == 6 and payoff["after SFT"].str.startswith("✓").sum() >= 5
    assert payoff["base model"].str.startswith("✗").all()
    keys = [x[4:] for x in seen if x.startswith("key:")]
    # The strip and its toggle near the top; Train before the data's and the sweep's settings.
    assert keys.index("sft.mask_prompt") < keys.index("sft_start") < keys.index("sft.base") \
        < keys.index("sft.sweep_sizes")
    assert "the 17 green ones are labels the loss counts" in texts(at)


def test_secondary_settings_are_under_advanced():
    at = open_page()
    inside, _ = advanced_keys(at, "sft.")
    assert {f"sft.{name}" for name in ADVANCED} <= inside
    assert {"sft.replay", "sft.compare_masking", "sft.mask_prompt"}.isdisjoint(inside)   # the motivated ones in view


def test_a_run_shows_every_chart_with_its_anchor_and_plain_names():
    at = open_page(SHORT)
    at.button(key="sft_start").click().run()
    poll(at, lambda a: "finished" in texts(a))
    notices = [c.value for c in at.caption if "What to notice" in c.value]
    assert len(at.get("plotly_chart")) == 3 and len(notices) >= 3 + 2   # the three charts, two tables
    loss = chart(at, "sft_loss")
    assert any("uniform guess: ln 103 = 4.6" in (a.get("text") or "") for a in loss["layout"]["annotations"])
    assert {t["name"] for t in loss["data"]} == {"training", "validation"}
    said = next(n for n in notices if "starts near 8" in n)
    assert "ln 103 = 4.6" in said and "never saw" in said           # why the base starts above a uniform guess
    acc = chart(at, "sft_acc")
    assert any(t["name"] == "the baked run" for t in acc["data"])     # the shipped run, step for step
    assert any("the baked run at 1,600 steps" in (a.get("text") or "") for a in acc["layout"]["annotations"])
    shown = visible(at)
    for raw in ("eval_loss", "mean_token_accuracy", "eval_accuracy", "val loss", "held out"):
        assert raw not in shown, raw
    metrics = {m.label for m in at.metric}
    assert {"training loss", "validation loss", "validation accuracy", "loss on the base's stories"} <= metrics
    assert "stopped" not in texts(at)                                 # the run finished its steps


def test_a_run_cut_by_its_time_limit_says_so_plainly_and_keeps_its_model():
    out = sft.run(SFTConfig(families="label", n_train=50, steps=100_000, eval_every=1000, max_seconds=2), Recorder())
    assert out.status == "time limit" and out.run
    assert "used its whole time limit of 2 s" in out.message and "complete and saved" in out.message
    assert "stopped" not in out.message


def test_formatting_the_rows_reports_progress_and_is_done_once():
    _, model, tok, _ = sft.load_base(SFTConfig())
    tok = sft.add_chat_template(model, tok, seed=0)
    rows = sft.default_examples(SFTConfig(families="copy,label", n_train=700, seed=11))
    seen = []
    first = sft.encode_all(tok, rows, True, 64, lambda done, total: seen.append((done, total)))
    assert seen[0] == (500, len(rows)) and seen[-1] == (len(rows), len(rows))
    again = []
    assert sft.encode_all(tok, rows, True, 64, lambda done, total: again.append(done)) is first and not again


def test_one_click_turns_replay_off_and_the_model_forgets_its_stories():
    at = open_page()
    at.button(key="sft_one_click_Watch forgetting: no replay").click().run()
    assert at.slider(key="sft.replay").value == 0.0 and at.number_input(key="sft.steps").value == 500
    base = lambda a: next((m.value for m in a.metric if m.label == "loss on the base's stories"), "–")  # noqa: E731

    def forgot(a: AppTest) -> bool:   # the first evaluation after the start (step 100) is enough to see it
        shown = base(a)
        return shown != "–" and float(shown) > 2.0

    poll(at, forgot, timeout=240)
    assert float(base(at)) > 10 * 0.17                               # the base before tuning: 0.17
    at.button(key="sft_stop").click().run()
    poll(at, lambda a: "stopped by you" in texts(a))                 # the slot is free again
