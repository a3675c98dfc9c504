"""engine.carbon: the energy meter around codecarbon, the ledger, the calculator, presets, myth."""
import math
import threading
import time
import types

import codecarbon
import pytest
import torch

from engine.carbon import calculator, levers
from engine.carbon.calculator import Run, estimate
from engine.core import energy
from engine.core.energy import CarbonInputError, EnergyMeter, Footprint
from engine.core.ledger import FootprintLedger


def _matmuls(seconds: float) -> None:
    a = torch.randn(256, 256)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        a @ a


def _in_worker(fn):
    """Run fn in a thread the way jobs do (one torch thread), return its result."""
    out = {}

    def body():
        torch.set_num_threads(1)
        out["value"] = fn()

    t = threading.Thread(target=body)
    t.start()
    t.join(60)
    return out["value"]


def _measure(seconds: float, **kw) -> Footprint:
    def job():
        meter = EnergyMeter(**kw)
        meter.start()
        _matmuls(seconds)
        return meter.stop()
    return _in_worker(job)


# --- measurement ---------------------------------------------------------------------------------

def test_meter_reports_positive_energy_for_a_cpu_workload(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fp = _measure(1.0, country_iso="USA")
    print(f"\n1 s of 256x256 matmuls: {fp.energy_kwh:.3e} kWh = {fp.energy_kwh * 3.6e6:.1f} J, "
          f"{fp.emissions_g * 1000:.2f} mg CO2e, CPU {fp.cpu_power_w:.2f} W, kind={fp.kind}\n{fp.method}")
    assert fp.available and fp.kind in ("measured", "estimated")
    assert fp.energy_kwh > 0 and fp.emissions_g > 0 and fp.cpu_power_w > 0
    assert 0.9 < fp.duration_s < 3
    # codecarbon applied the same intensity we list from its shipped table
    assert fp.grid_g_per_kwh == pytest.approx(energy.grid_intensity("USA").g_per_kwh, rel=1e-6)
    assert fp.emissions_g == pytest.approx(fp.energy_kwh * fp.grid_g_per_kwh)
    assert fp.thread_share is not None and fp.thread_share > 0.5   # alone, the job does the work
    assert fp.energy_kwh <= fp.process_energy_kwh * (1 + 1e-9)
    assert "United States" in fp.method and "codecarbon" in fp.method
    assert fp.error is None
    assert not (tmp_path / "emissions.csv").exists()   # output_methods=[]: nothing written


def test_concurrent_jobs_share_the_process_figure_and_the_ledger_adds_up():
    ledger, fps = FootprintLedger(), {}

    def job(name):
        torch.set_num_threads(1)
        meter = EnergyMeter(country_iso="USA")
        meter.start()
        _matmuls(1.0)
        fps[name] = meter.stop()
        ledger.add("alice", name, fps[name])

    threads = [threading.Thread(target=job, args=(f"page{i}",)) for i in range(2)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    a, b = fps["page0"], fps["page1"]
    # each codecarbon tracker charges the whole process; the thread shares split it between jobs
    assert a.thread_share + b.thread_share == pytest.approx(1.0, abs=0.15)
    assert a.energy_kwh + b.energy_kwh == pytest.approx(
        (a.process_energy_kwh + b.process_energy_kwh) / 2, rel=0.2)
    total = ledger.total(owner="alice")
    assert total.jobs == 2 and total.energy_kwh == pytest.approx(a.energy_kwh + b.energy_kwh)
    assert set(ledger.by_page()) == {"page0", "page1"}


def test_country_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("LLMX_CARBON_COUNTRY", "fra")
    assert EnergyMeter().country_iso == "FRA"
    monkeypatch.delenv("LLMX_CARBON_COUNTRY")
    assert EnergyMeter().country_iso == "USA"


class _NoRapl:
    def __init__(self, **kw):
        raise RuntimeError("no RAPL and an unknown CPU")


class _SwallowedStart:               # codecarbon's @suppress(Exception): start and stop fail quietly
    final_emissions_data = None

    def __init__(self, **kw):
        pass

    def start(self):
        pass

    def stop(self):
        pass


class _StopRaises:
    def __init__(self, **kw):
        self.stopped = False

    def start(self):
        pass

    def stop(self):
        raise OSError("scheduler died")


class _GarbledResult:                # a later codecarbon renames a field
    def __init__(self, **kw):
        pass

    def start(self):
        pass

    def stop(self):
        self.final_emissions_data = types.SimpleNamespace(duration=1.0)


@pytest.mark.parametrize("fake, words", [(_NoRapl, "could not start"), (_SwallowedStart, "no result"),
                                         (_StopRaises, "could not stop"),
                                         (_GarbledResult, "could not read")])
def test_codecarbon_failure_still_returns_a_labelled_footprint(monkeypatch, fake, words):
    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", fake)
    fp = _measure(0.2, country_iso="USA")
    assert fp.kind == "assumed" and words in fp.error
    assert fp.energy_kwh == pytest.approx(energy.ASSUMED_WATTS * fp.duration_s / 3.6e6)
    assert fp.emissions_g == pytest.approx(fp.energy_kwh * energy.grid_intensity("USA").g_per_kwh)
    assert "Not measured" in fp.method and "Assumed a constant 14 W" in fp.method


def test_failure_without_an_assumption_is_unavailable(monkeypatch):
    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", _NoRapl)
    fp = _measure(0.1, assumed_watts=None)
    assert fp.kind == "unavailable" and not fp.available and fp.emissions_g is None
    assert "No energy figure" in fp.method


def test_stop_never_raises_and_is_idempotent(monkeypatch):
    meter = EnergyMeter()
    early = meter.stop()
    assert early.kind == "unavailable" and "before start" in early.error
    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", _NoRapl)
    meter = EnergyMeter()
    with meter:
        pass
    assert meter.stop() is meter.footprint


# --- ledger --------------------------------------------------------------------------------------

def _fp(kwh, kind="estimated"):
    return Footprint(duration_s=1.0, energy_kwh=kwh, emissions_g=None if kwh is None else kwh * 100,
                     cpu_power_w=None, kind=kind, method="test", country_iso="USA",
                     grid_g_per_kwh=100.0)


def test_ledger_totals_add_up_across_threads():
    ledger = FootprintLedger(keep=50)
    owners, pages, per_thread = ["alice", "bob"], ["pretrain", "sft"], 250

    def writer(i):
        for n in range(per_thread):
            ledger.add(owners[i % 2], pages[n % 2], _fp(0.001 * (i + 1)))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    ledger.add("bob", "sft", _fp(None, "unavailable"))
    ledger.add("bob", "sft", _fp(0.5, "assumed"))

    expected = sum(0.001 * (i + 1) * per_thread for i in range(8)) + 0.5
    app = ledger.total()
    assert app.jobs == 8 * per_thread + 2 and app.unavailable == 1 and app.assumed == 1
    assert app.energy_kwh == pytest.approx(expected) and app.emissions_g == pytest.approx(expected * 100)
    by_owner = [ledger.total(owner=o) for o in owners]
    assert sum(t.energy_kwh for t in by_owner) == pytest.approx(app.energy_kwh)
    assert sum(t.energy_kwh for t in ledger.by_page().values()) == pytest.approx(app.energy_kwh)
    assert ledger.total("alice", "pretrain").jobs == 4 * per_thread / 2
    assert len(ledger.recent(n=1000)) == 50            # only the last `keep` entries are kept whole

    ledger.forget("alice")                             # her tab closed: her use still counts
    assert ledger.total(owner="alice").jobs == 0
    assert ledger.total().energy_kwh == pytest.approx(app.energy_kwh)
    pretrain = sum(0.001 * (i + 1) * per_thread / 2 for i in range(8))
    assert ledger.by_page()["pretrain"].energy_kwh == pytest.approx(pretrain)


# --- grid intensity ------------------------------------------------------------------------------

def test_grid_intensities_come_from_codecarbons_table():
    rows = energy.grid_intensities()
    assert len(rows) > 200 and [r.name for r in rows] == sorted(r.name for r in rows)
    assert all(0 <= r.g_per_kwh < 2000 and len(r.iso) == 3 for r in rows)
    usa, fra = energy.grid_intensity("usa"), energy.grid_intensity("FRA")
    assert usa.name == "United States" and fra.name == "France"
    assert fra.g_per_kwh < 100 < usa.g_per_kwh      # nuclear France vs the US mix
    assert energy.world_average_g_per_kwh() == 475
    assert "codecarbon" in energy.grid_source()
    with pytest.raises(CarbonInputError, match="ATL"):
        energy.grid_intensity("ATL")


# --- calculator ----------------------------------------------------------------------------------

def test_hand_worked_gpu_hours():
    # 8 A100 x 400 W x 24 h = 76.8 kWh; x PUE 1.2 = 92.16 kWh; x 400 g/kWh = 36.864 kg
    e = estimate(Run(accelerator="A100", count=8, hours=24, pue=1.2, grid_g_per_kwh=400))
    assert e.device_hours == 192 and e.it_kwh == pytest.approx(76.8) and e.kwh == pytest.approx(92.16)
    assert e.t_co2e == pytest.approx(0.036864)
    homes, car_km, flights = (q.amount for q in e.equivalents)
    assert homes == pytest.approx(92.16 / 10_715)
    assert car_km == pytest.approx(36_864 / (8_887 / 22.0 / 1.609344))      # ~147 km
    assert flights == pytest.approx(36.864 / (1_984 * 0.45359237))
    assert "km driven" in e.equivalents[1].text and len(e.steps) == 4


def test_hand_worked_flops():
    # 6 x 1e9 x 2e10 = 1.2e20 FLOPs; / (989e12 x 0.5) = 242,669 device-s = 67.41 device-h
    e = estimate(Run(accelerator="H100", count=4, n_params=1e9, n_tokens=2e10, mfu=0.5,
                     pue=1.0, grid_g_per_kwh=100))
    assert e.flops == pytest.approx(1.2e20)
    assert e.device_hours == pytest.approx(67.4081, rel=1e-5)
    assert e.wall_hours == pytest.approx(67.4081 / 4, rel=1e-5)
    assert e.kwh == pytest.approx(0.7 * 67.4081, rel=1e-5)


def test_custom_watts_device_hours_and_a_zero_carbon_grid():
    e = estimate(Run(accelerator="custom", watts=250, device_hours=1000, grid_g_per_kwh=0))
    assert e.kwh == 250 and e.t_co2e == 0 and e.wall_hours is None
    assert estimate(Run(accelerator="TPU v4", count=1, hours=1, grid_g_per_kwh=0)).kwh == 0.192
    for acc in calculator.ACCELERATORS.values():
        assert acc.source and acc.watts > 0 and acc.peak_flops > 0


@pytest.mark.parametrize("kw, field", [
    (dict(count=0, hours=1), "count"),
    (dict(count=-8, hours=1), "count"),
    (dict(count=math.nan, hours=1), "count"),
    (dict(count=8, hours=math.inf), "hours"),
    (dict(count=True, hours=1), "count"),
    (dict(count="8", hours=1), "count"),
    (dict(count=8, hours=0), "hours"),
    (dict(count=1_000_000, hours=100 * 8760), "count"),          # a million GPUs for a century
    (dict(count=400_000, hours=10 * 8760), "device_hours"),      # each bound fine, product absurd
    (dict(count=8, hours=1, pue=0.9), "pue"),
    (dict(count=8, hours=1, pue=5), "pue"),
    (dict(count=8, hours=1, grid_g_per_kwh=-1), "grid_g_per_kwh"),
    (dict(count=8, hours=1, grid_g_per_kwh=None), "grid_g_per_kwh"),
    (dict(count=8, hours=1, watts=0), "watts"),
    (dict(count=8, n_params=1e9, n_tokens=1e10, mfu=0), "mfu"),
    (dict(count=8, n_params=1e9, n_tokens=1e10, mfu=1.5), "mfu"),
    (dict(count=8, n_params=1e9, n_tokens=1e10), "MFU"),
    (dict(count=8, hours=1, n_params=1e9, n_tokens=1e10, mfu=0.4), "one way"),
    (dict(count=8), "one way"),
    (dict(hours=5), "number of devices"),
    (dict(accelerator="K80", count=8, hours=1), "Unknown accelerator"),
    (dict(accelerator="custom", count=8, hours=1), "watts"),
    (dict(accelerator="custom", watts=300, count=8, n_params=1e9, n_tokens=1e9, mfu=0.4), "peak FLOP/s"),
])
def test_bad_inputs_raise_a_clear_error(kw, field):
    kw.setdefault("grid_g_per_kwh", 400)
    with pytest.raises(CarbonInputError, match=field) as info:
        estimate(Run(**kw))
    assert isinstance(info.value, ValueError)


# --- published footprints ------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(calculator.PRESETS))
def test_presets_reproduce_their_published_figures(key):
    p = calculator.PRESETS[key]
    c = calculator.compare(p)
    assert p.source and p.notes and p.tolerance <= 0.05
    if p.published_kwh is None:
        assert p.no_energy_reason                       # says why energy cannot be checked
    else:
        assert abs(c.kwh_ratio - 1) <= p.tolerance, (key, c.estimate.kwh, p.published_kwh)
    assert abs(c.t_ratio - 1) <= p.tolerance, (key, c.estimate.t_co2e, p.published_t_co2e)


def test_preset_details_match_their_papers():
    bert = calculator.PRESETS["bert-base"].run
    assert 64 * bert.watts == pytest.approx(12_041.51)                       # Strubell Table 3
    assert calculator.STRUBELL_US_G_PER_KWH == pytest.approx(432.73, abs=0.01)   # 0.954 lbs/kWh
    # at V100 TDP instead of Strubell's measured draw: ~1.6x the published energy
    tdp = estimate(Run(accelerator="V100", count=64, hours=79.2, pue=1.58, grid_g_per_kwh=400))
    assert tdp.kwh / 1507 == pytest.approx(1.59, abs=0.01)
    # the two Llama intensities, both back-calculated from Meta's tables, agree within 1%
    g2 = calculator.PRESETS["llama-2"].run.grid_g_per_kwh
    g3 = calculator.PRESETS["llama-3"].run.grid_g_per_kwh
    assert g2 == pytest.approx(423.4, abs=0.1) and g3 == pytest.approx(g2, rel=0.01)
    # GPT-3: 6 N D is Patterson's 3.14e23 FLOPs to within 1%
    assert 6 * 175e9 * 300e9 == pytest.approx(3.14e23, rel=0.01)


def test_myth_check():
    m = calculator.MYTH
    assert 200 < m.overstatement < 250
    assert 1 / 7.5 < m.fact_household_years < 1 / 6.5           # about a seventh of one home-year
    assert 27 < m.claim_household_years < 33                     # the "30 homes" follows from 340,000
    assert m.fact_kwh == 1_507 and "EIA" in m.household.source
    assert "1/7" in m.verdict


# --- the Carbon page's config ----------------------------------------------------------------------

@pytest.mark.parametrize("key", list(calculator.PRESETS))
def test_a_preset_loaded_into_the_calculator_survives_a_link(key):
    cfg = levers.CarbonConfig().with_preset(key)
    linked, problems = levers.CarbonConfig.from_params(cfg.to_params())
    assert not problems and linked.preset == key
    ref = calculator.compare(calculator.PRESETS[key]).estimate
    got = estimate(linked.run())
    assert got.kwh == pytest.approx(ref.kwh, rel=1e-5) and got.t_co2e == pytest.approx(ref.t_co2e, rel=1e-5)


def test_calculator_config_gives_the_run_each_way():
    cfg = levers.CarbonConfig(accelerator="H100", watts=700.0, count=8, hours=10.0, pue=1.2, country="FRA")
    assert estimate(cfg.run()).kwh == pytest.approx(8 * 10 * 0.7 * 1.2)
    assert cfg.run().grid_g_per_kwh == energy.grid_intensity("FRA").g_per_kwh
    assert estimate(cfg.replace(length="device_hours", device_hours=80).run()).kwh == pytest.approx(8 * 10 * 0.7 * 1.2)
    flops = cfg.replace(length="flops", params_b=1.0, tokens_b=20.0, mfu=0.5, peak_tflops=1000.0).run()
    assert estimate(flops).device_hours == pytest.approx(6 * 1e9 * 20e9 / (1e15 * 0.5) / 3600)
    with pytest.raises(CarbonInputError, match="XYZ"):
        cfg.replace(country="XYZ").run()


def test_levers_always_start_with_the_fp32_baseline():
    cfg = levers.CarbonConfig(steps=40)
    variants = dict(cfg.levers())
    assert list(variants) == list(levers.LEVERS)
    assert not variants["fp32"].bf16 and variants["bf16"].bf16 and variants["ckpt"].grad_checkpoint
    assert variants["small"].size == levers.SMALL and variants["small"].steps == 40
    assert variants["small_loss"].steps == 40 * levers.SMALL_LOSS_STEPS
    assert [k for k, _ in cfg.replace(bf16=False, ckpt=False, small=False, small_loss=False).levers()] == ["fp32"]
    base = variants["fp32"]   # the recipe is pinned here, whatever the Pretraining page's defaults become
    assert (base.size, base.tokenizer, base.lr, base.batch_size, base.block_size, base.bf16) == \
        ("200k", "char", 3e-3, 16, 64, False)


def test_levers_summary_carries_each_variants_numbers_and_the_carbon_lesson_can_check_them():
    """The summary names one number per variant (`saved_bytes/<lever>`, ...): the lessons and the room
    read only numbers, and lessons/carbon.toml checks checkpointing's bytes against the baseline's."""
    from engine import lessons
    from engine.core.report import Recorder

    cfg = levers.CarbonConfig(bf16=False, ckpt=True, small=False, small_loss=False, steps=6, eval_every=3)
    rec = Recorder()
    result = _in_worker(lambda: levers.run_levers(cfg, rec))
    summary = result.summary
    assert result.status == "done" and [r["lever"] for r in summary["levers"]] == ["fp32", "ckpt"]
    assert summary["saved_bytes/ckpt"] < summary["saved_bytes/fp32"] / 5      # checkpointing keeps far less
    assert summary["eval_loss/ckpt"] == pytest.approx(summary["eval_loss/fp32"], abs=0.01)   # same arithmetic
    assert not any(k.startswith(("saved_bytes/bf16", "saved_bytes/small")) for k in summary)   # not run, not named
    assert all("footprint" not in r for r in summary["levers"])
    run = {"status": "done", "message": "", "records": rec.records, "summary": summary}
    for step in lessons.load("carbon").steps:   # every metric the lesson names exists, and the check passes
        named = [c[k] for c in [step.check, *step.check.get("all", [])] for k in ("metric", "of") if k in c]
        assert named and all(k in summary for k in named), (named, sorted(summary))
        assert lessons.passes(step.check, run)
    worse = {**summary, "saved_bytes/ckpt": summary["saved_bytes/fp32"]}      # and it fails when nothing was saved
    assert not lessons.passes(lessons.load("carbon").steps[0].check, {**run, "summary": worse})


def test_arithmetic_is_printed_without_e_notation():
    assert [calculator._sig(x) for x in (10_752, 0.0611, 79.2, 100.0, 1_082_990)] == \
        ["10,752", "0.0611", "79.2", "100", "1,082,990"]
    assert "1,289,376 kWh" in calculator.compare(calculator.PRESETS["gpt-3"]).estimate.steps[-1]
