"""Issue 16, what the app teaches: every page renders (no training) without the wrong phrasings the
issue lists, with the corrected sentences and their sources, and the figures it shows from the
literature keep their citations."""
import functools
import re

import apptest
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import AlertBase, HeadingBase, Markdown

# name: (script, link parameters). Small settings where a page computes something on render.
PAGES = {
    "home": ("app.py", None),
    "data": ("app_pages/data.py", {"n_docs": "400"}),
    "pretraining": ("app_pages/pretraining.py", None),
    "sft": ("app_pages/sft.py", None),
    "rlhf": ("app_pages/rlhf.py", None),
    "rlhf-ppo": ("app_pages/rlhf.py", {"method": "ppo"}),   # the PPO caption shows only with PPO chosen
    "cai": ("app_pages/cai.py", None),
    "carbon": ("app_pages/carbon.py", {"preset": "gpt-3"}),   # opens the GPT-3 notes' expander
    "attention": ("app_pages/attention.py", None),
    "pipeline": ("app_pages/pipeline.py", None),
    "scaling": ("app_pages/scaling.py", None),
}


def _flat(s: str) -> str:
    return " ".join(str(s).split())


def readable(at: AppTest) -> str:
    """Everything a person can read on the rendered page: markdown, captions, headings, info/warning/
    error/success boxes, expander and tab labels, widget and metric labels, and every help text."""
    parts = []
    for node in at._tree:
        if isinstance(node, (Markdown, AlertBase, HeadingBase)):
            parts.append(node.value)
        for attr in ("label", "help"):
            value = getattr(node, attr, None)
            if isinstance(value, str) and value:
                parts.append(value)
    return _flat(" ".join(parts))


def tables(at: AppTest) -> list:
    """The page's st.table and st.dataframe contents, as DataFrames."""
    return [t.value for t in at.table] + [d.value for d in at.dataframe]


@functools.cache
def page(name: str) -> AppTest:
    script, params = PAGES[name]
    return apptest.open_page(script, params, timeout=120)


@functools.cache
def text(name: str) -> str:
    return readable(page(name))


def widget_help(name: str, label: str) -> str:
    """The help text of the widget with this label on the page."""
    return next(_flat(n.help) for n in page(name)._tree if getattr(n, "label", None) == label
                and isinstance(getattr(n, "help", None), str))


# --- the wrong phrasings must not come back -------------------------------------------------------

BANNED = [  # regular expressions, matched case-insensitively
    r"Nothing is pre-recorded",                                       # point 9: baked runs and a replay cache
    r"pretraining mix",                                               # point 4: PPO-ptx is in the RL objective
    r"GRPO's baseline",                                               # point 5: GRPO also divides by the std
    r"mean of the other answers to the same question",                # point 5
    r"bf16[^.]{0,80}same loss",                                       # point 10: bf16 changes the arithmetic
    r"faster on CPU,",                                                # point 10: only on CPUs with bf16 support
    r"never sees a mask\b",                                           # point 10: a [MASK] token
    r"embed every document with a pretrained encoder",                # point 3: not what FineWeb-Edu/DCLM did
    r"from a few labelled examples",                                  # point 3
    r"teach a small model which embeddings look like good text",      # point 3
    r"optimised on those preferences",                                # point 6: a preference model, then RL
]


@pytest.mark.parametrize("name", list(PAGES))
def test_no_wrong_phrasing_on_the_page(name):
    shown = text(name)
    assert not [b for b in BANNED if re.search(b, shown, re.IGNORECASE)]


@pytest.mark.parametrize("name, phrase", [
    pytest.param("data", "<tags>) per word (Gopher)", id="data-gopher-symbol-rule"),
    pytest.param("carbon", "330 W is the measured average", id="carbon-330W"),
])
def test_no_wrong_phrasing_from_the_engine(name, phrase):
    assert phrase.lower() not in text(name).lower()


# --- the corrected sentences, with their sources, are on the page ---------------------------------

CORRECTED = {
    "home": ["What is live:", "trains on this CPU while you watch", "What is not:", "assets/runs",
             "replays that finished run from the server's cache"],
    "data": [  # point 3: what FineWeb-Edu and DCLM did, then what the toy does
             "Llama-3-70B-Instruct", "450,000", "Snowflake-arctic-embed", "Penedo et al. 2024",
             "arXiv:2406.17557", "fastText classifier", "OpenHermes-2.5", "ExplainLikeImFive",
             "Li et al. 2024", "arXiv:2406.11794", "The toy here",
             # point 2: Common Crawl's size, where the 45 TB and C4's 750 GB appear
             "Common Crawl is about 24 TB.", "petabytes", "tens of terabytes compressed",
             "41 monthly crawls from 2016 to 2019", "Brown et al. 2020", "arXiv:2005.14165",
             "C4's 750 GB is one monthly crawl (April 2019)", "Raffel et al. 2020"],
    "pretraining": [  # point 10
             "GPT never sees a [MASK] token", "replaces 80% with [MASK], 10% with a random token and leaves "
             "10% unchanged", "next-sentence prediction", "Devlin et al. 2019", "RoBERTa",
             "arXiv:1907.11692", "changes the arithmetic", "faster only on CPUs with bf16"],
    "sft": ["PPO-ptx", "the γ term of its eq. 2, not into SFT", "Ouyang et al. 2022"],   # point 4
    "rlhf": [  # point 1, where RLHF and DPO are introduced
             "Common claim, checked", "LLaMA was trained with RLHF", "arXiv:2302.13971", "no RLHF",
             "Llama 2-Chat", "rejection-sampling fine-tuning and PPO", "arXiv:2307.09288",
             "rejection sampling and DPO", "arXiv:2407.21783"],
    "rlhf-ppo": [  # point 5
             "itself included", "divides by each group's own standard deviation", "Shao et al. 2024",
             "arXiv:2402.03300", "RLOO", "Ahmadian et al. 2024",
             "PPO's clipped objective with a group baseline and no value network"],
    "cai": [  # point 6
             "a preference model is trained on those labels", "arXiv:2212.08073",
             "DPO (Rafailov et al. 2023) straight on the AI labels instead of a preference model",
             "At this scale SL-CAI does most of the work", "bench/RESULTS.md"],
}


@pytest.mark.parametrize("name", list(CORRECTED))
def test_corrected_sentences_with_sources_are_shown(name):
    shown = text(name)
    assert not [c for c in CORRECTED[name] if _flat(c) not in shown]


def test_bf16_help_says_what_bf16_does():
    helped = widget_help("pretraining", "bf16 autocast")
    assert "bf16 support" in helped and "arithmetic" in helped and "same loss" not in helped


def test_gopher_symbol_rule_is_called_adapted():
    assert "adapted" in widget_help("data", "Max symbols per word").lower()


def test_gpt3_power_says_who_measured_it():
    assert "OpenAI measured" in text("carbon") and "footnote 14" in text("carbon")


def test_chinchilla_calculator_shows_as_trained_and_approaches_1_2_beside_approach_3():
    rows = " ".join(" ".join(map(str, t.to_numpy().ravel())) for t in tables(page("scaling")))
    assert "as trained" in rows and "Approaches 1–2" in rows and "Approach 3" in rows
    assert "stopped before convergence" in text("scaling")          # why they differ (Besiroglu et al. 2024)


def test_chinchilla_beat_gopher_headline_is_given():
    assert "Gopher (280B" in text("scaling") and "Hoffmann et al. 2022" in text("scaling")


def test_isoflop_tab_warns_its_budgets_are_far_below_hoffmanns():
    assert re.search(r"\d+ to \d+ orders of magnitude below", text("scaling"))


# --- figures from the literature keep their citations ----------------------------------------------

def test_every_published_footprint_has_a_source():
    table = next(t for t in tables(page("carbon")) if "source" in t.columns and "published t CO2e" in t.columns)
    assert len(table) >= 5 and table["source"].astype(str).str.strip().str.len().gt(0).all()


def test_every_dataset_size_in_scale_in_context_has_a_source():
    table = next(t for t in tables(page("data")) if {"dataset", "published", "source"} <= set(t.columns))
    assert len(table) >= 8 and table["source"].astype(str).str.strip().str.len().gt(0).all()


def test_every_scaling_constant_row_names_its_paper():
    shown = text("scaling")
    assert "Kaplan et al. 2020" in shown and "Hoffmann et al. 2022" in shown


# --- and in the code: the engine's docstrings say what the methods did --------------------------------

def _source_text() -> str:
    files = [apptest.ROOT / "app.py", *sorted((apptest.ROOT / "app_pages").glob("*.py")),
             *sorted((apptest.ROOT / "engine").rglob("*.py"))]
    return _flat(" ".join(f.read_text() for f in files))


@pytest.mark.parametrize("phrase", [
    pytest.param("as FineWeb-Edu and DCLM do it: embed every document", id="quality-docstring"),
    pytest.param("reward of the other answers to the same prompt, as in GRPO", id="rlhf-docstring"),
    pytest.param("GRPO's baseline", id="group-advantages-docstring"),
    pytest.param("faster on CPU, same loss", id="bf16-comment"),
])
def test_wrong_phrasing_is_gone_from_the_code(phrase):
    assert phrase not in _source_text()
