"""AppTest of the RLHF page: renders, trains from a link, keeps a person's labels, reports bad input."""
import json
from pathlib import Path

import apptest
from apptest import poll, texts

from app_pages import ui
from engine.core import runs
from engine.rlhf import preferences


def open_page(params: dict | None = None):
    return apptest.open_page("app_pages/rlhf.py", params, timeout=60)


SHORT = {"n_pairs": "60", "rm_steps": "10", "steps": "10", "eval_every": "5", "batch_size": "8"}


def test_page_renders_its_steps():
    at = open_page()
    assert [h.value for h in at.header] == ["1 · Preferences", "2 · The reward model",
                                            "3 · Pull the policy toward the preferences"]
    assert "Bradley–Terry" in texts(at) and "gold reward" in texts(at)
    assert at.radio(key="rl.method").value == "ppo"                     # RLHF runs RL by default


def test_short_dpo_run_from_a_link_streams_metrics_and_shows_before_and_after():
    at = open_page({**SHORT, "method": "dpo", "beta": "0.1", "lr": "0.0001"})
    assert at.number_input(key="rl.steps").value == 10                    # the link's settings reach the widgets
    at.button(key="rl_start").click().run()
    poll(at, lambda a: "DPO: finished" in texts(a))
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["reward margin"]) > 0 and metrics["validation true (gold) reward"] != "–"
    table = next(d.value for d in at.dataframe if "tuned" in d.value.columns)
    assert {"SFT gold", "tuned gold"} <= set(table.columns) and len(table) > 0
    assert "stage **rlhf**, parent `sft-base`" in texts(at)
    assert sorted(b.label for b in at.get("download_button")) == ["Download metrics (CSV)", "Download model (zip)"]


def test_switching_the_method_sets_its_learning_rate():
    at = open_page()
    assert at.select_slider(key="rl.lr").value == 3e-4
    at.radio(key="rl.method").set_value("dpo").run()
    assert at.select_slider(key="rl.lr").value == 1e-4                   # DPO degraded at PPO's 3e-4 here
    at.radio(key="rl.method").set_value("ppo").run()
    assert at.select_slider(key="rl.lr").value == 3e-4


def test_first_ppo_trains_its_reward_model_in_the_same_job():
    at = open_page({**SHORT, "ppo_epochs": "2", "samples_per_prompt": "4"})
    at.button(key="rl_start").click().run()                               # no reward model yet: the job trains one
    poll(at, lambda a: "PPO: finished" in texts(a))
    assert "Part 1 of 2: the reward model" in " ".join(e.label for e in at.expander)
    metrics = {m.label: m.value for m in at.metric}
    assert {"reward minus KL penalty", "KL from the SFT model", "entropy of the answers"} <= set(metrics)
    assert metrics["training / validation / test pairs"].count("/") == 2   # the three splits, named
    table = next(d.value for d in at.dataframe if "tuned" in d.value.columns)
    assert {"SFT reward", "tuned reward", "tuned gold"} <= set(table.columns)


def test_reward_model_then_ppo_from_the_page():
    """Step 2 on its own, then PPO: the policy job uses that reward model and trains none of its own."""
    at = open_page({**SHORT, "ppo_epochs": "2", "samples_per_prompt": "4"})
    at.button(key="rl_rm_start").click().run()
    poll(at, lambda a: "reward model: finished" in texts(a))
    assert {m.label: m.value for m in at.metric}["test accuracy"].endswith("%")
    assert "Kept the weights of step" in texts(at)                       # early stopping, said on the page
    shown = next(d.value for d in at.dataframe if "reward (chosen)" in d.value.columns)
    assert shown["prompt"].is_unique                                      # one pair per question
    rm_run = next(j.result for j in ui.runner().jobs.values() if j.stage == "reward" and j.result)
    at.button(key="rl_start").click().run()
    poll(at, lambda a: "PPO: finished" in texts(a))
    assert "Part 1 of 2" not in " ".join(e.label for e in at.expander)   # no second reward model
    ppo = next(j for j in ui.runner().jobs.values() if j.stage == "rlhf" and j.result)
    assert runs.read_info(ppo.result).config["reward"] == Path(rm_run).name
    metrics = {m.label: m.value for m in at.metric}
    assert {"reward minus KL penalty", "KL from the SFT model", "entropy of the answers"} <= set(metrics)
    table = next(d.value for d in at.dataframe if "tuned" in d.value.columns)
    assert {"SFT reward", "tuned reward", "tuned gold"} <= set(table.columns)


def test_labels_survive_reruns_and_can_be_downloaded_and_all_ties_are_refused():
    at = open_page({"source": "human", "method": "dpo"})
    first = at.session_state["rl_pending"]
    at.button(key="rl_pick_tie").click().run()
    at.button(key="rl_pick_tie").click().run()
    at.run()                                                              # a plain rerun keeps them
    assert len(at.session_state["rl_labels"]) == 2 and at.session_state["rl_labels"][0]["prompt"] == first["prompt"]
    assert "2 labels" in texts(at)
    assert len(at.get("download_button")) == 1                           # the labels, as TRL's JSON Lines
    at.button(key="rl_start").click().run()
    assert any("All 2 of your labels are ties" in e.value for e in at.error)
    at.button(key="rl_pick_a").click().run()
    assert [lab["choice"] for lab in at.session_state["rl_labels"]] == ["tie", "tie", "A"]
    assert "1 preferences, 2 ties" in texts(at)
    at.button(key="rl_start").click().run()                               # one preference is too few
    poll(at, lambda a: any("at least 8 are needed" in e.value for e in a.error))


def test_bad_uploads_are_reported_and_the_rest_used():
    at = open_page({"source": "upload"})
    rows = [json.dumps({"prompt": "Who is Tom?", "chosen": "Tom has a horse.", "rejected": "Tom is a singer."}),
            "{broken", json.dumps({"prompt": "Who is Tom?", "chosen": "Tom.", "rejected": "Tom."})]
    at.file_uploader(key="rl_upload").set_value(("p.jsonl", "\n".join(rows).encode(), "application/jsonl")).run()
    assert not at.exception
    assert any("1 pairs" in s.value for s in at.success)
    warning = " ".join(w.value for w in at.warning)
    assert "line 2: not a JSON object" in warning and "line 3: chosen and rejected are the same" in warning
    at.file_uploader(key="rl_upload").set_value(("p.jsonl", b"{}", "application/jsonl")).run()
    assert any("No usable pairs" in e.value for e in at.error)
    assert preferences.parse_jsonl(rows[0].encode())[0]                   # the format the page reads
