"""Workshop features: presets, instructor links that hide controls, projector mode, and the
pipeline view (one prompt answered by every stage's model)."""
import apptest
import pytest
from test_pages import open_page

from app_pages import ui
from engine import pipeline as lineage
from engine.attention.induction import InductionConfig
from engine.cai.config import CAIConfig
from engine.carbon.levers import CarbonConfig
from engine.core import runs
from engine.core.config import StageConfig, _fmt
from engine.data.config import DataConfig
from engine.pretraining import PretrainConfig
from engine.rlhf.config import RLHFConfig
from engine.scaling.config import ScalingConfig
from engine.sft import SFTConfig

CONFIGS = [PretrainConfig, SFTConfig, RLHFConfig, CAIConfig, DataConfig, InductionConfig, ScalingConfig, CarbonConfig]


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_preset_is_a_valid_link(cls: type[StageConfig]):
    assert "quick demo" in cls.PRESETS and "thorough" in cls.PRESETS
    assert set(cls.PRESET_NOTES) == set(cls.PRESETS)
    for name, values in cls.PRESETS.items():
        cfg, problems = cls.from_params({k: _fmt(v) for k, v in values.items()})
        assert not problems, (name, problems)
        assert {k: getattr(cfg, k) for k in values} == values


def test_a_preset_sets_the_widgets_and_link_and_an_edit_makes_it_custom():
    at = apptest.open_page("app_pages/pretraining.py")
    assert at.segmented_control(key="_pt_preset").value == "quick demo"      # the defaults are the quick demo
    at.segmented_control(key="_pt_preset").set_value("thorough").run()
    assert at.number_input(key="pt.steps").value == 3000 and at.segmented_control(key="pt.size").value == "1M"
    assert at.query_params["steps"] in ("3000", ["3000"])
    at.number_input(key="pt.steps").set_value(2000).run()
    assert at.segmented_control(key="_pt_preset").value == "custom"


def test_hide_in_a_link_hides_those_controls_and_keeps_their_values():
    at = apptest.open_page("app_pages/pretraining.py", {"_hide": "lr,steps,preset", "steps": "300"})
    style = next(h.proto.body for h in at.get("html") if "display:none" in h.proto.body)
    assert ".st-key-pt-lr" in style and ".st-key-pt-steps" in style and ".st-key-_pt_preset" in style
    assert at.number_input(key="pt.steps").value == 300


def test_the_link_popover_holds_every_setting_and_the_hidden_controls():
    at = open_page("pretraining", {"seed": "7"})
    link = at.sidebar.code[0].value
    assert "seed=7" in link and "steps=600" in link and "_hide" not in link
    at.sidebar.multiselect(key="_link_hide").set_value(["lr", "preset"]).run()
    assert at.sidebar.code[0].value.endswith("_hide=lr,preset")


def test_projector_mode_from_a_link_and_by_toggle():
    at = open_page("pretraining", {"_projector": "1"})
    assert at.sidebar.toggle(key="_projector").value
    assert any("font-size:21px" in h.proto.body for h in at.get("html"))
    at.sidebar.toggle(key="_projector").set_value(False).run()
    assert "_projector" not in at.query_params


def test_the_run_tree_runs_from_the_baked_base_to_the_newest_tuned_run():
    known = lineage.tree(owner="me")
    base, sft = (runs.read_info(runs.find_run(n)) for n in ("pretrain-base-gpt", "sft-base"))
    assert [r.path for r in lineage.chain(sft, known)] == [base.path, sft.path]
    # A run of another visitor is not in my tree; my own RLHF run ends a line of three stages.
    model, tok, _ = runs.load_run(sft.path)
    for owner in ("someone-else", "me"):
        runs.save_run(model, tok, "rlhf", {}, [], {}, name=f"by-{owner}", parent=sft.path.name, owner=owner)
    known = lineage.tree(owner="me")
    assert [r.name for r in known if r.stage == "rlhf"] == ["by-me"]
    mine = next(r for r in lineage.leaves(known) if r.name == "by-me")
    assert [r.stage for r in lineage.chain(mine, known)] == ["pretrain", "sft", "rlhf"]
    # A job replayed from the cache gives me a run someone else trained: it joins my tree, ancestors too.
    sl = runs.save_run(model, tok, "sft", {}, [], {}, name="their-sl", parent=sft.path.name, owner="someone-else")
    theirs = runs.save_run(model, tok, "cai", {}, [], {}, name="their-cai", parent=sl.name, owner="someone-else")
    known = lineage.tree(owner="me", also=[theirs.name])
    line = lineage.chain(lineage.leaves(known)[0], known)
    assert [r.path for r in line[:2]] == [base.path, sft.path]
    assert [(r.stage, r.name) for r in line[2:]] == [("sft", "their-sl"), ("cai", "their-cai")]


def test_every_stage_answers_the_same_prompt():
    base, sft = (runs.read_info(runs.find_run(n)) for n in ("pretrain-base-gpt", "sft-base"))
    assert lineage.respond(sft, "Where does Amy live?") == "Amy lives in the city."   # the world's fact
    assert "\n" not in lineage.respond(base, "Amy lives")                          # a base continues one line
    with pytest.raises(Exception, match="Type a prompt"):
        lineage.respond(sft, "  ")


def test_pipeline_page_shows_the_tree_and_each_stage_answer_from_a_link():
    at = open_page("pipeline", {"prompt": "What pet does Amy have?", "end": "sft-base"})
    assert "sft-base" in at.get("graphviz_chart")[0].proto.spec
    answers = [m.value for m in at.markdown if m.value.startswith("<div")]
    assert len(answers) == 2 and "Amy has a" in answers[1]
    assert len(at.get("button_group")[0].proto.options) == 5   # a story prompt, a fact, three red-team requests
    at.text_input(key="pl.prompt").set_value("").run()
    assert any("Type a prompt" in i.value for i in at.info)


def test_a_run_the_cache_gave_me_is_mine_to_build_on(monkeypatch):
    """A room presses Train on the same link: one job runs, the others replay it. Each of them can
    then start the next stage from that run, as if they had trained it."""
    link = {"families": "label", "n_train": "60", "steps": "20", "eval_every": "10"}
    first = open_page("sft", link)
    first.button(key="sft_start").click().run()
    apptest.poll(first, lambda a: "finished" in apptest.texts(a))
    monkeypatch.setattr(ui, "visitor_id", lambda: "visitor-2")   # AppTests share one session
    second = open_page("sft", link)
    second.button(key="sft_start").click().run()                    # the same settings: replayed at once
    apptest.poll(second, lambda a: "finished" in apptest.texts(a), timeout=10)
    second.switch_page("app_pages/rlhf.py")
    second.run()
    assert len(ui.runner().jobs) == 1                                # one job ran; the second visitor replayed it
    tuned = second.selectbox(key="rl.parent").options[1:]           # the first: the baked SFT run
    assert tuned == [runs.read_info(ui.runner().jobs.popitem()[1].result).path.name]
