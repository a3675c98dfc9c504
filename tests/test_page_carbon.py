"""AppTest: the Carbon page's ledger, calculator, presets, myth check and footprint experiment."""
import json
import time

import apptest
import pytest
from apptest import poll, texts
from streamlit.testing.v1 import AppTest

from engine.carbon import calculator, levers
from engine.core import energy, ledger


def open_page(params: dict | None = None):
    return apptest.open_page("app_pages/carbon.py", params, timeout=60)


@pytest.fixture(autouse=True)
def fresh_ledger():
    ledger.LEDGER.clear()
    yield
    ledger.LEDGER.clear()


def metrics(at: AppTest) -> dict[str, str]:
    """label -> value; a later metric with the same label (the whole app's) wins."""
    return {m.label: m.value for m in at.metric}


def test_page_renders_every_section_without_a_job():
    at = open_page()
    assert [h.value for h in at.header] == ["What cuts the footprint, measured", "Measured here",
                                            "Real training runs: a calculator", "Published footprints", "Myth check"]
    assert "Nothing has been trained" in texts(at)
    assert metrics(at)["overstated"] == "226×" and "Strubell" in texts(at)
    assert at.query_params["accelerator"] in ("A100", ["A100"])     # the settings are in the URL


def test_calculator_hand_worked_cases():
    # 8 A100s x 100 h x 400 W = 320 kWh at the devices; x PUE 1.1 = 352 kWh; x 500 g/kWh = 0.176 t
    at = open_page({"accelerator": "A100", "watts": "400", "count": "8", "hours": "100", "pue": "1.1",
                    "country": "custom", "grid_g": "500"})
    assert metrics(at)["energy"] == "352 kWh" and metrics(at)["emissions"] == "0.176 t CO2e"
    # FLOPs: 6 x 1e9 x 20e9 = 1.2e20 / (312e12 x 0.5) / 3600 = 213.7 A100-hours x 400 W = 85.5 kWh
    at.radio(key="cc.length").set_value("flops").run()
    at.number_input(key="cc.params_b").set_value(1.0)
    at.number_input(key="cc.tokens_b").set_value(20.0)
    at.number_input(key="cc.mfu").set_value(0.5)
    at.number_input(key="cc.pue").set_value(1.0).run()
    assert metrics(at)["device-hours"] == "214" and metrics(at)["energy"] == "85.5 kWh"
    assert "6 x N x D = 6 x 1e+09 x 2e+10 = 1.2e+20" in at.code[0].value


@pytest.mark.parametrize("key, value, words", [("cc.count", 0, "Devices must be more than 0"),
                                               ("cc.hours", -5.0, "Wall-clock hours must be more than 0"),
                                               ("cc.watts", 1e6, "Power per device must be more than 0 and at most 5,000"),
                                               ("cc.pue", 0.5, "PUE must be at least 1")])
def test_bad_calculator_input_shows_the_reason_not_a_traceback(key, value, words):
    at = open_page()
    at.number_input(key=key).set_value(value).run()
    assert not at.exception
    assert any(words in e.value for e in at.error), [e.value for e in at.error]
    assert "device-hours" not in [m.label for m in at.metric]       # no result drawn below the error


def test_unknown_country_in_a_link_is_reported_and_replaced():
    at = open_page({"country": "XYZ"})
    assert any("XYZ" in t.value for t in at.toast)
    assert at.selectbox(key="cc.country").value == "USA"


def test_choosing_a_preset_fills_the_calculator_and_shows_the_published_figure():
    at = open_page()
    at.selectbox(key="cc.preset").set_value("gpt-3").run()
    assert at.number_input(key="cc.watts").value == 330 and at.number_input(key="cc.count").value == 10_000
    m = metrics(at)
    assert m["published energy"] == "1,287,000 kWh" and m["published emissions"] == "552 t CO2e"
    assert m["energy"] == "1,289,376 kWh" and m["estimate / published"] == "1.002"
    assert "Patterson et al. 2021" in texts(at)
    table = at.table[0].value                                        # every preset, with its source
    assert len(table) == len(calculator.PRESETS) and table["t ratio"].astype(float).between(0.95, 1.05).all()
    assert table.loc["GPT-3 175B (Patterson et al. 2021)", "published kWh"] == "1,287,000"


def test_footprint_experiment_runs_shows_its_table_and_the_ledger_adds_up():
    at = open_page({"steps": "4", "eval_every": "2", "max_seconds": "20"})
    at.button(key="cc_start").click().run()
    end = time.time() + 60
    while time.time() < end and "finished" not in texts(at):        # run_every never fires in AppTest
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
    assert "finished" in texts(at), texts(at)[:2000]
    table = next(d.value for d in at.dataframe if "variant" in d.value.columns)
    assert list(table["variant"]) == list(levers.LEVERS.values())
    assert (table["energy (Wh)"] > 0).all() and table["final validation loss"].notna().all()
    small, base = table.set_index("variant").loc["smaller model, same steps"], table.iloc[0]
    assert small["parameters"] < base["parameters"] and small["weights+grads+AdamW (MiB)"] < base["weights+grads+AdamW (MiB)"]
    ckpt = table.set_index("variant").loc["gradient checkpointing"]
    assert ckpt["saved for backward (MiB)"] < base["saved for backward (MiB)"]

    # The ledger: one job on this page; the session's total is what the page and its table show.
    total = ledger.LEDGER.total()
    assert total.jobs == 1 and set(ledger.LEDGER.by_page()) == {"carbon"}
    assert [x.value for x in at.metric if x.label == "training jobs"] == ["1", "1"]   # session, app
    shown = next(d.value for d in at.dataframe if "job" in d.value.columns)
    assert shown["energy (Wh)"].sum() == pytest.approx(total.energy_kwh * 1000)
    assert list(shown["page"]) == ["Carbon footprint"]                        # the page's name, not "carbon"
    assert [x.value for x in at.metric if x.label == "energy"][:2] == [f"{total.energy_kwh * 1000:.3g} Wh"] * 2
    # the variants' own meters add up to about the job's (the rest: codecarbon and tokenizing the corpus)
    assert table["energy (Wh)"].sum() <= total.energy_kwh * 1000 * 1.05

    # What-if for one run: that run's own energy, priced on other grids.
    assert at.radio(key="cc_basis").value == "run"
    run = ledger.LEDGER.recent()[0].footprint
    chart = json.loads(next(c for c in at.get("plotly_chart") if "in g CO2e" in c.proto.spec).proto.spec)
    assert chart["data"][0]["x"][0] == pytest.approx(run.emissions_g)     # "here, as measured": this run


def test_the_ledger_shows_page_names_not_stage_labels():
    at = open_page()
    me = at.query_params["v"]
    me = me[0] if isinstance(me, list) else me
    for stage, label in (("cai", "Constitutional AI"), ("reward", "Reward model"), ("sft", "SFT")):
        ledger.LEDGER.add(me, stage, energy.Footprint(2.0, 1e-6, 4e-4, 10.0, "estimated", "test", "USA", 400.0), label)
    at.run()
    names = ["Constitutional AI", "RLHF reward model", "Instruction tuning (SFT)"]
    table = next(d.value for d in at.dataframe if "job" in d.value.columns)
    assert sorted(table["page"]) == sorted(names)
    spec = json.loads(next(c for c in at.get("plotly_chart") if "cc_pages" in c.proto.id).proto.spec)
    assert sorted(spec["data"][0]["x"]) == sorted(names)
    assert not {"cai", "reward", "sft"} & set(spec["data"][0]["x"])


def test_one_click_checkpointing_trades_memory_for_time():
    at = open_page()
    at.button(key="cc_one_ckpt").click().run()
    poll(at, lambda a: "Footprint experiment: finished" in texts(a), timeout=300)
    table = next(d.value for d in at.dataframe if "variant" in d.value.columns).set_index("variant")
    assert list(table.index) == ["fp32 (baseline)", "gradient checkpointing"]
    base, ckpt = table.loc["fp32 (baseline)"], table.loc["gradient checkpointing"]
    assert ckpt["saved for backward (MiB)"] < base["saved for backward (MiB)"] / 5        # memory saved
    assert ckpt["energy / baseline"] > 1.0                                               # paid for in compute
    assert ckpt["final validation loss"] == pytest.approx(base["final validation loss"], abs=0.01)   # same arithmetic
