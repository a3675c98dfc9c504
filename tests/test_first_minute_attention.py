"""Issue 19 on the Attention page: the first screen opens on words (the real MiniLM, two annotated heads with
what to notice) beside the recorded induction demo; the character-level models are one click away; and the
one click "Watch an induction head form" trains the default seeded run, in which the head forms."""
import json
import re
import time

import apptest
from apptest import notices, poll, texts

from app_pages import ui
from engine import demos
from engine.attention import induction
from engine.attention.induction import InductionConfig


def open_page(params: dict | None = None):
    return apptest.open_page("app_pages/attention.py", params, timeout=180)


def test_first_screen_opens_on_words_with_two_annotated_heads_and_the_recorded_phase_change():
    at = open_page()
    assert at.selectbox(key="att.model").value == "minilm"
    heads = [m.value for m in at.markdown if m.value.startswith("**Layer ")]
    assert "reads the token just before" in heads[0] and "parks on \\[CLS\\]" in heads[1]
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(figs) == 3 and len(notices(at)) >= 3                          # every chart has its sentence
    said_on = [[a["text"] for a in f["layout"].get("annotations", [])] for f in figs]
    assert said_on[0] == ["each token → the one before"] and said_on[1] == ["everyone → [CLS]"]   # annotated
    assert "phase change" in said_on[2] and figs[2]["layout"]["title"]["text"] == "Recorded: an induction head forms"
    said = notices(at)
    assert re.search(r"(9\d|100)% of each token's attention goes to the token just before", said[0])
    assert re.search(r"(8\d|9\d)% of the attention goes to \[CLS\]", said[1]) and "Clark et al. 2019" in said[1]
    assert "In this recorded run" in said[2] and "ln 16 = 2.77, a uniform guess" in said[2]
    assert "**Recorded**, not live" in texts(at)
    assert at.button(key="ind_watch").label == "Watch an induction head form"


def test_the_character_level_models_are_one_click_away_and_back():
    at = open_page()
    at.button(key="att_to_chars").click().run()
    assert not at.exception
    assert at.selectbox(key="att.model").value == "pretrain-base-gpt"
    assert "GPT-style (causal)" in texts(at) and at.text_area(key="att.text").value.startswith("Tom has")
    assert any(m.value.startswith("**Layer ") and "parks on T" in m.value for m in at.markdown)
    at.button(key="att_to_words").click().run()
    assert at.selectbox(key="att.model").value == "minilm" and "BERT-style (bidirectional)" in texts(at)


def test_the_recorded_demo_shows_the_phase_change_with_the_quick_demo_settings():
    demo = demos.load("induction-forms")
    assert demo is not None, "record it: python -m engine demo induction-forms"
    assert (demos.DEMO_DIR / "induction-forms.json").stat().st_size < 200_000
    assert not demo["samples"] and "attn" not in json.dumps(demo["info"])     # not the big attention arrays
    cfg = InductionConfig.from_dict(demo["stage_config"])
    assert cfg.replace(max_seconds=InductionConfig().max_seconds) == InductionConfig() and demo["status"] == "done"
    p = induction.phase_change(demo["records"])
    assert p["start"] < 0.1 and p["end"] > 0.4                          # the best head's score rises ...
    assert p["plateau_until"] >= 200 and p["step"] > p["plateau_until"]   # ... after a plateau: a phase change
    assert p["loss_repeat_plateau"] > 1.0 > 0.2 > p["loss_repeat_end"]    # and the repeat becomes predictable


def test_one_click_trains_the_default_seeded_run_and_the_induction_head_forms():
    at = open_page({"steps": "100", "seed": "3"})        # a link with other settings: the click restores the defaults
    at.button(key="ind_watch").click().run()
    assert not at.exception
    assert at.select_slider(key="ind.steps").value == 1000 and at.number_input(key="ind.seed").value == 0
    t0 = time.time()
    poll(at, lambda a: "Induction run: finished" in texts(a), timeout=300)
    print(f"one click to finished in AppTest: {time.time() - t0:.1f} s")
    job = next(j for j in ui.runner().jobs.values() if j.label == "Induction run")
    p = induction.phase_change(job.snapshot()["records"])
    assert p is not None and p["start"] < 0.1 and p["end"] > 0.3         # the induction score rose past the change
    assert p["plateau_until"] >= 100 and p["loss_repeat_end"] < 0.3
    assert "In your run" in texts(at)                                    # the panel now draws the visitor's run
    at.session_state["att.tab"] = "Watch heads form"
    at.run()
    assert any(s.key.startswith("ind_replay_") for s in at.select_slider)   # and the tab offers the replay
