"""Issue 19 on the RLHF page: the point first (two recorded PPO runs: with the KL leash the reward
model's score and the gold reward rise together; without it the score rises while the gold falls),
PPO as the default method with DPO beside it, Train above the settings, progress from the first
second, plain names on screen, and reward hacking in one click."""

import apptest
from apptest import advanced_keys, chart, order, poll, texts, visible
from streamlit.testing.v1 import AppTest

from engine import demos
from engine.rlhf import preferences, recipe
from engine.rlhf.config import RLHFConfig

ADVANCED = ("steps", "lr", "ppo_epochs", "samples_per_prompt", "eval_every", "max_seconds", "seed")


def open_page(params: dict | None = None) -> AppTest:
    return apptest.open_page("app_pages/rlhf.py", params, timeout=120)


def line(spec: dict, name: str) -> list[float]:
    return next(t["y"] for t in spec["data"] if t["name"] == name)


def test_the_defaults_are_the_quick_demo_and_rl():
    assert list(RLHFConfig.PRESETS) == ["quick demo", "standard", "thorough"]
    default = RLHFConfig()
    assert all(getattr(default, k) == v for k, v in RLHFConfig.PRESETS["quick demo"].items())
    assert default.method == "ppo"                                      # RLHF runs RL by default
    assert "minute" in RLHFConfig.PRESET_NOTES["standard"]
    # The recorded quick demo is the defaults, spelled out.
    assert recipe.QUICK.replace(max_seconds=default.max_seconds) == default


def test_the_recorded_runs_are_small_registered_and_show_proxy_against_gold():
    assert {"rlhf-ppo", "rlhf-reward-hacking"} <= set(demos.names())
    for name in ("rlhf-ppo", "rlhf-reward-hacking"):
        assert (demos.DEMO_DIR / f"{name}.json").stat().st_size < 200_000
    hacked = demos.load("rlhf-reward-hacking")
    assert hacked["stage_config"]["kl_coef"] == 0 and hacked["stage_config"] == recipe.HACKING.to_dict()
    assert hacked["info"]["reward_training"]["kept"]["eval_accuracy"] > 0.7   # a good reward model, still hacked


def test_first_screen_shows_the_recorded_runs_before_any_setting_and_train_above_the_rest():
    at = open_page()
    seen = order(at)
    first_widget = next(i for i, x in enumerate(seen) if x.startswith("key:"))
    assert seen.index("chart:" + next(c.proto.id for c in at.get("plotly_chart") if "rl_payoff" in c.proto.id)) \
        < first_widget                                                # the payoff comes before any setting
    spec = chart(at, "rl_payoff")
    score_l, gold_l = line(spec, "reward model's score, leashed"), line(spec, "gold reward, leashed")
    score_h, gold_h = line(spec, "reward model's score, no leash"), line(spec, "gold reward, no leash")
    assert score_l[-1] > score_l[0] and gold_l[-1] > gold_l[0] + 0.3  # leashed: both rise
    assert score_h[-1] > score_h[0] + 1 and gold_h[-1] < gold_h[0] - 0.5   # unleashed: proxy up, gold down
    notice = next(c.value for c in at.caption if "What to notice" in c.value and "reward hacking" in c.value)
    assert "Gao, Schulman & Hilton 2022" in notice and "seed 0" in notice
    keys = [x[4:] for x in seen if x.startswith("key:")]
    assert keys.index("rl_start") < keys.index("rl.source") < keys.index("rl.rm_steps")
    answers = next(d.value for d in at.dataframe if "after PPO, no leash" in d.value.columns)
    assert answers["question"].is_unique and len(answers) == 6
    about = lambda col: sum(preferences.about_person(q, a) for q, a in zip(answers["question"], answers[col]))  # noqa: E731
    assert about("after PPO, leashed") >= 5 and about("after PPO, no leash") <= 1   # hacked: about no one asked


def test_secondary_settings_are_under_advanced():
    at = open_page()
    inside, _ = advanced_keys(at, "rl.")
    assert {f"rl.{name}" for name in ADVANCED} <= inside
    assert {"rl.method", "rl.kl_coef"}.isdisjoint(inside)               # the motivated ones in view


def test_the_labeler_shows_progress_from_the_first_second():
    at = open_page({"n_pairs": "300", "seed": "7"})                      # labels not made yet in this process
    at.button(key="rl_rm_start").click().run()
    poll(at, lambda a: any("the simulated labeler compares answers" in (p.proto.text or "")
                           for p in a.get("progress")), timeout=30)
    at.button(key="rl_rm_stop").click().run()
    poll(at, lambda a: "stopped by you" in texts(a))


def test_one_click_watch_reward_hacking_trains_the_recorded_settings_and_the_gold_falls():
    at = open_page({"kl_coef": "0.2", "steps": "20"})                   # a link with other settings
    at.button(key="rl_one_click_Watch reward hacking").click().run()
    assert at.slider(key="rl.kl_coef").value == 0 and at.number_input(key="rl.steps").value == recipe.HACKING.steps
    assert at.select_slider(key="rl.lr").value == recipe.HACKING.lr
    poll(at, lambda a: "PPO: finished" in texts(a), timeout=400)
    held = chart(at, "rl_gold")
    score, gold = line(held, "validation reward-model score"), line(held, "validation true (gold) reward")
    assert score[-1] > score[0] + 1.0 and gold[-1] < gold[0] - 0.5       # the proxy up, the gold down
    recorded = [r for r in demos.load("rlhf-reward-hacking")["records"] if "eval_gold_reward" in r]
    assert abs(gold[-1] - recorded[-1]["eval_gold_reward"]) < 0.3         # what the page shows as recorded
    shown = visible(at)
    for raw in ("objective/", "rewards/", "eval_", "val loss", "held out:"):
        assert raw not in shown, raw
