"""Issue 18, lessons: every shipped lesson parses and links into a page with settings that page's runs
have; a broken file names its line; the checks mean what the format says; and a learner following a
lesson in the sidebar sees its steps tick as their own real runs pass (and the hint when one fails)."""
import json
import re
from pathlib import Path

import pytest
from apptest import poll
from streamlit.testing.v1 import AppTest

from app_pages.lesson import PAGE_STAGES
from engine import lessons
from engine.attention.induction import InductionConfig
from engine.cai.config import CAIConfig
from engine.carbon.levers import CarbonConfig
from engine.core.config import UserError
from engine.data.compare import CompareConfig
from engine.data.quality import QualityConfig
from engine.pretraining import PretrainConfig
from engine.rlhf.config import RLHFConfig
from engine.scaling.config import DistillConfig, IsoConfig, OverfitConfig, PruneConfig, SweepConfig
from engine.sft import SFTConfig

ROOT = Path(__file__).resolve().parent.parent
# The configs of the jobs each kind of job runs with (Job.stage -> the Task's config classes).
CONFIGS = {"pretrain": (PretrainConfig,), "data": (CompareConfig, QualityConfig), "sft": (SFTConfig,),
           "reward": (RLHFConfig,), "rlhf": (RLHFConfig,), "cai": (CAIConfig,), "attention": (InductionConfig,),
           "scaling": (SweepConfig, IsoConfig, OverfitConfig, PruneConfig, DistillConfig), "carbon": (CarbonConfig,)}
# What real runs of each kind log: the recorded demos and the baked runs (records and summaries).
RECORDED = {"pretrain": ["assets/runs/*/metrics.jsonl"], "data": ["assets/demos/data-*.json"],
            "sft": ["assets/demos/sft-*.json", "assets/demos/cai-*.json"], "reward": ["assets/demos/rlhf-*.json"],
            "rlhf": ["assets/demos/rlhf-*.json"], "cai": ["assets/demos/cai-*.json"],
            "attention": ["assets/demos/induction-*.json"], "scaling": ["assets/demos/scaling-*.json"],
            "carbon": ["assets/demos/carbon-*.json"]}
SHIPPED = [lessons.load(n) for n in lessons.available()]


def logged_keys(stage: str) -> set[str]:
    keys = set()
    for pattern in RECORDED[stage]:
        for path in ROOT.glob(pattern):
            if path.suffix == ".jsonl":
                rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
                keys |= {k for r in rows for k in r}
            else:
                d = json.loads(path.read_text())
                keys |= {k for r in d.get("records", []) for k in r} | set(d.get("summary") or {})
    return keys


def test_there_is_a_lesson_for_every_stage_and_one_for_the_whole_pipeline():
    pages = {s.page for lesson in SHIPPED for s in lesson.steps}
    assert set(PAGE_STAGES) <= pages
    whole = [les for les in SHIPPED if len({s.page for s in les.steps}) >= 4]
    assert whole and "20 minutes" in whole[0].title


@pytest.mark.parametrize("lesson", SHIPPED, ids=lambda les: les.name)
def test_every_step_links_to_a_page_with_settings_its_runs_have_and_checks_what_they_log(lesson):
    pages = {Path(p).stem for p in re.findall(r'"app_pages/(\w+)\.py"', (ROOT / "app.py").read_text())}
    for step in lesson.steps:
        assert step.page in pages, f"{lesson.name} step at line {step.line}: no page {step.page}"
        stages = (step.stage,) if step.stage else PAGE_STAGES[step.page]
        settings = {k: v for k, v in step.params.items() if not k.startswith("_")}
        fitting = [cls for s in stages for cls in CONFIGS[s] if settings.keys() <= {f for f in cls().to_params()}]
        assert fitting, f"{lesson.name} line {step.line}: no run of {stages} has all of {sorted(settings)}"
        assert all(not cls.from_params(settings)[1] for cls in fitting), f"{lesson.name} line {step.line}"
        hidden = step.params.get("_hide", "")
        assert all(h in fitting[0]().to_params() for h in hidden.split(",") if h), f"{lesson.name} {hidden}"
        logged = set().union(*(logged_keys(s) for s in stages))
        for check in [step.check, *step.check.get("all", [])]:
            for key in (check.get("metric"), check.get("of")):
                assert key is None or key in logged, f"{lesson.name} line {step.line}: no real run logs {key!r}"


def test_a_broken_lesson_names_its_line():
    good = '[[step]]\nsay = "Train."\nlink = "pretraining"\ncheck = { metric = "eval_loss", below = 1.0 }\n'
    text = 'title = "T"\n\n' + good + "\n" + good.replace("below = 1.0", "under = 1.0")
    with pytest.raises(UserError, match=r"step 2 \(line 8\).*unknown check key under"):
        lessons.parse(text, "mine")
    with pytest.raises(UserError, match=r"mine\.toml is not valid TOML.*line 3"):
        lessons.parse('title = "T"\n[[step]]\nsay = "no closing quote\n', "mine")
    with pytest.raises(UserError, match=r"line 3\).*no `check`"):
        lessons.parse('title = "T"\n\n[[step]]\nsay = "x"\nlink = "sft"\n', "mine")
    with pytest.raises(UserError, match=r"line 3\).*`link` must start with a page"):
        lessons.parse('title = "T"\n\n[[step]]\nsay = "x"\nlink = "https://x.org"\ncheck = { ended = "done" }\n')
    with pytest.raises(UserError, match="no lesson called 'nope'. Lessons here: .*pretraining"):
        lessons.load("nope")


def run(status="done", message="", records=(), summary=None) -> dict:
    return {"status": status, "message": message, "records": list(records), "summary": summary or {}}


def test_checks_mean_what_the_format_says():
    falling = run(records=[{"eval_loss": 3.0}, {"eval_loss": 2.0}, {"eval_loss": 1.2}])
    assert lessons.passes({"metric": "eval_loss", "below": 1.5}, falling)
    assert not lessons.passes({"metric": "eval_loss", "below": 1.0}, falling)
    assert lessons.passes({"metric": "eval_loss", "fell": True}, falling)
    assert not lessons.passes({"metric": "eval_loss", "rose": True}, falling)
    assert not lessons.passes({"metric": "eval_loss", "turned_up": True}, falling)
    assert not lessons.passes({"metric": "accuracy", "above": 0.0}, falling)          # a metric never logged
    overfit = run(records=[{"eval_loss": 2.0, "role": "large"}, {"eval_loss": 1.0, "role": "large"},
                           {"eval_loss": 1.4, "role": "large"}, {"eval_loss": 0.5, "role": "small"}])
    assert lessons.passes({"metric": "eval_loss", "where": {"role": "large"}, "turned_up": True}, overfit)
    assert not lessons.passes({"metric": "eval_loss", "where": {"role": "small"}, "turned_up": True}, overfit)
    halved = run(summary={"after": 0.2, "before": 0.9})
    assert lessons.passes({"metric": "after", "of": "before", "at_most": 0.5}, halved)
    assert not lessons.passes({"metric": "after", "of": "before", "at_most": 0.2}, halved)
    diverged = run("failed", "loss became nan at step 40: lower the learning rate")
    assert lessons.passes({"ended": "diverged"}, diverged) and not lessons.passes({"ended": "done"}, diverged)
    both = {"all": [{"metric": "eval_loss", "fell": True}, {"ended": "done"}]}
    assert lessons.passes(both, falling) and not lessons.passes(both, run("stopped", records=falling["records"]))


def test_a_run_counts_for_a_step_only_when_made_with_the_settings_its_link_names():
    step = lessons.parse('title = "T"\n[[step]]\nsay = "x"\nlink = "pretraining?lr=1e-3&_hide=lr"\n'
                         'check = { ended = "done" }\n').steps[0]
    assert lessons.fits(step, PretrainConfig(lr=0.001))
    assert not lessons.fits(step, PretrainConfig(lr=10.0))
    sweep = lessons.parse('title = "T"\n[[step]]\nsay = "x"\nlink = "scaling?n_models=4"\n'
                          'check = { ended = "done" }\n').steps[0]
    assert lessons.fits(sweep, SweepConfig()) and not lessons.fits(sweep, OverfitConfig())


def sidebar(at: AppTest) -> tuple[list[str], list[str], str]:
    steps = [m.value for m in at.sidebar.markdown if re.match(r":material/\w+: \*\*\d", m.value)]
    hints = [c.value for c in at.sidebar.caption if "tips_and_updates" in c.value]
    progress = [p.proto.text for p in at.get("progress")]
    return steps, hints, progress[-1] if progress else ""


def test_following_a_lesson_ticks_its_steps_as_the_learners_own_runs_pass():
    """The pretraining lesson from its link: a diverged run (step 2) ticks step 2 only; a quick demo at
    the default settings ticks step 1; the masked-token step stays open with no hint (no run tried it)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["lesson"] = "pretraining"
    at.run()
    steps, hints, progress = sidebar(at)
    assert len(steps) == 3 and progress == "0 of 3 steps done" and not hints
    links = [p.proto.query_string for p in at.get("page_link") if p.proto.label.startswith("Open step")]
    assert len(links) == 3 and all("lesson=pretraining" in q and "v=" in q for q in links)   # lesson and visitor kept
    at.query_params.update({"lr": "10.0", "steps": "300", "_hide": "lr"})   # step 2's link
    at.switch_page("app_pages/pretraining.py").run()
    at.button(key="pt_start").click().run()
    poll(at, lambda a: sidebar(a)[2] == "1 of 3 steps done", timeout=120)
    steps, hints, _ = sidebar(at)
    assert [s.startswith(":material/check_circle:") for s in steps] == [False, True, False]
    assert hints == [":material/tips_and_updates: " + lessons.load("pretraining").steps[0].hint]   # step 1's hint
    # Step 1's link in a new tab (the visitor's token in the URL): the quick demo at the default settings.
    tab = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    tab.query_params.update({"lesson": "pretraining", "objective": "clm", "v": at.query_params["v"]})
    tab.switch_page("app_pages/pretraining.py").run()
    tab.button(key="pt_start").click().run()
    poll(tab, lambda a: sidebar(a)[2] == "2 of 3 steps done", timeout=240)
    steps, hints, _ = sidebar(tab)
    assert [s.startswith(":material/check_circle:") for s in steps] == [True, True, False] and not hints
