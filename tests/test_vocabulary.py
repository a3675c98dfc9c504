"""Issue 19, one vocabulary and a sentence under every chart, on every page as a first visit draws it:
plain metric names (TRL's raw names only in help texts), one word per data split, one preset vocabulary,
and no chart without its "What to notice"."""
import ast
import dataclasses
import functools
import re
from pathlib import Path

import apptest
import pytest
from apptest import visible
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Markdown
from test_teaching import PAGES

from engine.core.config import StageConfig

ROOT = Path(__file__).resolve().parent.parent
# What must not be read on a page: raw logged names and the old words for the validation split.
RAW = [r"\beval_[a-z_/]+", r"\bval_(loss|accuracy)\b", r"\bval loss\b", r"mean_token_accu", r"\brewards/\w+",
       r"\bobjective/\w+", r"\bpolicy/\w+", r"\bheld[- ]out (loss|accuracy)\b"]
PRESETS = ["quick demo", "standard", "thorough"]


@functools.cache
def page(name: str) -> AppTest:
    script, params = PAGES[name]
    return apptest.open_page(script, params, timeout=120)


@pytest.mark.parametrize("name", PAGES)
def test_no_raw_metric_names_or_old_split_words_on_the_page(name):
    text = visible(page(name))
    found = [m.group(0) for pattern in RAW for m in re.finditer(pattern, text)]
    assert not found, f"{name} shows {sorted(set(found))}"


@pytest.mark.parametrize("name", PAGES)
def test_every_chart_has_its_what_to_notice_sentence_right_under_it(name):
    nodes = [n for n in page(name)._tree if n.type in ("plotly_chart", "caption") or isinstance(n, Markdown)]
    for i, node in enumerate(nodes):
        if node.type == "plotly_chart":
            after = nodes[i + 1] if i + 1 < len(nodes) else None
            assert after is not None and "What to notice" in after.value, f"{name}: chart {node.proto.id} has no notice"


def test_no_page_draws_a_chart_around_the_helper_that_adds_the_notice():
    for path in (ROOT / "app_pages").glob("*.py"):
        if path.name == "ui.py":
            continue
        calls = [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Attribute) and n.func.attr in ("plotly_chart", "line_chart", "bar_chart",
                                                                             "area_chart", "scatter_chart", "pyplot")]
        assert not calls, f"{path.name} line {calls[0].lineno}: draw charts with ui.plot or ui.curve_chart"


def configs() -> list[type[StageConfig]]:
    import engine.attention.induction  # noqa: F401  (every stage's configs, registered by import)
    import engine.cai.config  # noqa: F401
    import engine.carbon.levers  # noqa: F401
    import engine.data.compare  # noqa: F401
    import engine.pretraining  # noqa: F401
    import engine.rlhf.config  # noqa: F401
    import engine.scaling.config  # noqa: F401
    import engine.sft  # noqa: F401

    def below(cls):
        return [c for s in cls.__subclasses__() for c in [s, *below(s)]]
    return [c for c in set(below(StageConfig)) if c.PRESETS]


@pytest.mark.parametrize("cls", configs(), ids=lambda c: c.__name__)
def test_every_preset_picker_says_quick_demo_standard_thorough_and_the_defaults_are_the_quick_demo(cls):
    assert list(cls.PRESETS) == PRESETS
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    assert {k: defaults[k] for k in cls.PRESETS["quick demo"]} == cls.PRESETS["quick demo"]
    assert set(cls.PRESET_NOTES) == set(PRESETS)
