"""AppTest for the Model scaling page: it renders, a tiny sweep from a link trains and is fitted,
and bad settings give clear messages instead of crashes."""


import re

import apptest
from apptest import poll, texts

TINY = {"n_models": "3", "min_params": "3000", "max_params": "30000", "tokens": "20480"}


def open_page(params: dict | None = None):
    return apptest.open_page("app_pages/scaling.py", params, timeout=60)


def test_page_renders_with_formulas_calculator_and_settings_in_the_url():
    at = open_page()
    assert at.title[0].value == "Model scaling"
    formulas = " ".join(m.value for m in at.latex)
    assert "12" in formulas and "6" in formulas                             # N ≈ 12·L·d², C ≈ 6·N·D
    calc = at.table[0].value                                                # the calculator answered
    assert list(calc["N_opt"]) == ["70B", "69.3B", "32.2B", "804B"] and "as trained" in calc["allocation"][0]
    assert at.query_params["n_models"] in ("4", ["4"]) and "budgets" in at.query_params
    assert not at.error


def test_tiny_sweep_from_a_link_trains_and_fits():
    at = open_page(TINY)
    assert at.slider(key="sc.n_models").value == 3                         # the link reached the widgets
    at.button(key="sc_sweep_start").click().run()
    assert not at.exception
    # The tab's view is drawn before the first screen's: wait for the fitted table, not only "finished".
    poll(at, lambda a: "GPT-2 sweep: finished" in texts(a) and "| your GPT-2 sweep (" in texts(a))
    shown = texts(at)
    assert re.search(r"\| your GPT-2 sweep \(characters, [^)]*\) \| A/N\^α \|", shown)   # fitted, labelled ...
    assert "Kaplan et al. 2020 (BPE tokens" in shown and "not comparable" in shown     # ... beside the papers
    assert "at least 4 model sizes" in shown                                # three sizes cannot also fit a floor
    assert any("Final validation loss against size" in c.proto.spec for c in at.get("plotly_chart"))


def test_gpt2_and_llama_sweeps_run_side_by_side():
    at = open_page({**TINY, "arch": "both"})
    at.button(key="sc_sweep_start").click().run()
    poll(at, lambda a: "| your GPT-2 sweep (" in texts(a) and "| your Llama sweep (" in texts(a))
    assert re.search(r"\| your Llama sweep \([^)]*\) \| A/N\^α \|", texts(at))


def test_tiny_isoflop_budget_trains_and_draws_its_profile():
    at = open_page({"budgets": "1e9", "iso_models": "3", "iso_min": "700", "iso_max": "5000"})
    at.session_state["sc.tab"] = "Compute-optimal size"     # only the open tab draws its live charts
    at.button(key="sc_iso_start").click().run()
    poll(at, lambda a: "IsoFLOP runs: finished" in texts(a))
    specs = " ".join(c.proto.spec for c in at.get("plotly_chart"))
    assert "IsoFLOP profiles" in specs and "Training curves against compute spent" in specs
    profiles = next(d.value for d in at.dataframe if "budget C" in d.value.columns)
    assert list(profiles["budget C"]) == ["1e+09"]
    assert profiles["note"][0] in ("bottom of the U", "no U: the losses do not curve upward",
                                   "no U here: the bottom lies below the sizes tried",
                                   "no U here: the bottom lies above the sizes tried")


def test_bad_settings_say_what_to_do():
    at = open_page({"n_models": "1", "budgets": "1e3", "flops": "1"})
    errors = " ".join(e.value for e in at.error)
    assert "collapse to one point" in errors                                # the sweep
    assert "too small to train any" in errors                               # the isoFLOP budget and the calculator
    at.button(key="sc_sweep_start").click().run()
    assert not at.exception and "collapse to one point" in " ".join(e.value for e in at.error)
