"""Energy and carbon: measure this app's own training, and put published LLM footprints in proportion.

Four parts, each usable alone:
- `EnergyMeter` wraps codecarbon's offline tracker for one job, inside the job's worker thread, and
  always returns a `Footprint` that says how its figure was obtained. `LEDGER` adds them up.
- `grid_intensities()` lists the per-country g CO2e/kWh table that codecarbon ships.
- `estimate(Run(...))` is the back-of-envelope calculator for real training runs: energy = devices x
  power x hours x PUE; emissions = energy x grid intensity; hours optionally from FLOPs = 6 N D.
- `PRESETS` are published footprints with their sources, and `MYTH` is a claim checked against them.

Every number that comes from outside carries its source next to it. Plain Python, no streamlit.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import json
import logging
import math
import numbers
import os
import sys
import threading
import time
from importlib import resources

from .config import StageConfig, UserError, field

LB_KG = 0.45359237  # one pound in kilograms (exact, by definition)
KWH_J = 3.6e6


def default_country() -> str:
    """ISO 3166 alpha-3 code of the grid this app runs on: $LLMX_CARBON_COUNTRY, else USA."""
    return os.environ.get("LLMX_CARBON_COUNTRY", "USA").strip().upper() or "USA"


# ------------------------------------------------------------------------------------------------
# Grid intensity: the table codecarbon ships, not a hand-typed one.
# ------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GridIntensity:
    iso: str            # ISO 3166 alpha-3, as codecarbon keys it
    name: str
    g_per_kwh: float    # g CO2e per kWh of electricity, annual average, location-based
    year: int | None


def grid_source() -> str:
    return (f"codecarbon {_codecarbon_version()}, data/private_infra/global_energy_mix.json: annual "
            "carbon intensity of electricity per country (codecarbon's methodology page credits "
            "Our World in Data, ourworldindata.org/grapher/carbon-intensity-electricity)")


@functools.lru_cache(maxsize=1)
def grid_intensities() -> tuple[GridIntensity, ...]:
    """Every country in codecarbon's table, sorted by name. Read from the installed package."""
    path = resources.files("codecarbon") / "data" / "private_infra" / "global_energy_mix.json"
    table = json.loads(path.read_text(encoding="utf-8"))
    rows = [GridIntensity(iso, row.get("country_name") or iso, float(row["carbon_intensity"]), row.get("year"))
            for iso, row in table.items() if row.get("carbon_intensity") is not None]
    return tuple(sorted(rows, key=lambda r: r.name))


def grid_intensity(iso: str) -> GridIntensity:
    """One country's row; raises CarbonInputError for a code codecarbon does not know."""
    code = str(iso).strip().upper()
    for row in grid_intensities():
        if row.iso == code:
            return row
    raise CarbonInputError(f"No grid intensity for country code {iso!r}: use a 3-letter ISO code "
                           "from the list (e.g. USA, FRA, DEU).")


@functools.lru_cache(maxsize=1)
def world_average_g_per_kwh() -> float:
    """What codecarbon falls back to for a country it does not know (its IEA 2019 world average)."""
    path = resources.files("codecarbon") / "data" / "private_infra" / "carbon_intensity_per_source.json"
    return float(json.loads(path.read_text(encoding="utf-8"))["world_average"])


def _codecarbon_version() -> str:
    try:
        import codecarbon
        return codecarbon.__version__
    except Exception:  # noqa: BLE001 - a label only
        return "(not importable)"


# ------------------------------------------------------------------------------------------------
# Measurement: one EnergyMeter per job, started and stopped in the job's own thread.
# ------------------------------------------------------------------------------------------------

# When codecarbon cannot run, a job is charged this constant power, and the Footprint says so.
# 4 W = codecarbon's default for one busy thread of a CPU it does not know (core/cpu.py,
# DEFAULT_POWER_PER_CORE); 10 W = codecarbon's RAM floor on x86 (2 modules x 5 W, external/ram.py).
ASSUMED_WATTS = 14.0

_COUNTER_MODES = {"intel_rapl": "RAPL energy counters", "windows_emi": "the Windows Energy Meter Interface",
                  "intel_power_gadget": "Intel Power Gadget", "apple_powermetrics": "powermetrics"}


@dataclasses.dataclass(frozen=True)
class Footprint:
    """What one job used, and how we know. `energy_kwh is None` means no figure at all."""
    duration_s: float
    energy_kwh: float | None
    emissions_g: float | None
    cpu_power_w: float | None      # average over the job, after attribution
    kind: str                      # "measured" | "estimated" | "assumed" | "unavailable"
    method: str                    # plain-language account of the estimate, for the page
    country_iso: str
    grid_g_per_kwh: float | None
    process_energy_kwh: float | None = None  # codecarbon's whole-process figure, before attribution
    thread_share: float | None = None        # this job's share of the process's CPU time
    error: str | None = None                 # why codecarbon's figure is missing, if it is

    @property
    def available(self) -> bool:
        return self.energy_kwh is not None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class EnergyMeter:
    """codecarbon's OfflineEmissionsTracker for one job; `stop()` never raises.

    Construction is free. `start()` takes about 1.3 s the first time in a process (codecarbon
    probes the hardware and loads its CPU table) and about 10 ms after that: call it from the job's
    worker thread, never from a page script. Call `stop()` from the same thread, so the job's share
    of the process's CPU time can be worked out (see `Footprint.thread_share`).
    """

    def __init__(self, country_iso: str | None = None, assumed_watts: float | None = ASSUMED_WATTS):
        self.country_iso = (country_iso or default_country()).strip().upper()
        self.assumed_watts = assumed_watts   # None: report "unavailable" instead of an assumption
        self.footprint: Footprint | None = None
        self._tracker = None
        self._error: str | None = None
        self._t0: float | None = None
        self._thread: int | None = None
        self._cpu0 = (0.0, 0.0)

    def __enter__(self) -> "EnergyMeter":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if self._t0 is not None:
            return
        try:
            self._tracker = _start_tracker(self.country_iso)
        except Exception as e:  # noqa: BLE001 - training must go on whatever codecarbon does
            self._tracker, self._error = None, f"codecarbon could not start: {type(e).__name__}: {e}"
        # The window starts after codecarbon's own start-up, as codecarbon's does.
        self._t0 = time.perf_counter()
        self._thread = threading.get_ident()
        self._cpu0 = (time.thread_time(), time.process_time())

    def stop(self) -> Footprint:
        if self.footprint is not None:
            return self.footprint
        if self._t0 is None:
            return self._unavailable(0.0, "stop() was called before start()")
        wall = time.perf_counter() - self._t0
        share = self._thread_share()
        tracker, data, error = self._tracker, None, self._error
        self._tracker = None
        if tracker is not None:
            try:
                tracker.stop()
                data = getattr(tracker, "final_emissions_data", None)
                if data is None:
                    error = "codecarbon returned no result (it logs and swallows its own errors)"
            except Exception as e:  # noqa: BLE001
                error = f"codecarbon could not stop: {type(e).__name__}: {e}"
                _stop_schedulers(tracker)
        fp = None
        if data is not None:
            try:
                fp = self._from_codecarbon(tracker, data, share)
            except Exception as e:  # noqa: BLE001 - e.g. a field renamed in a later codecarbon
                error = f"could not read codecarbon's result: {type(e).__name__}: {e}"
        self.footprint = fp or self._fallback(wall, error)
        return self.footprint

    # --- internals ------------------------------------------------------------------------------
    def _thread_share(self) -> float | None:
        """This thread's CPU time over the whole process's, during the window.

        codecarbon's process mode charges the job with all of the process's CPU time and RAM, so
        two jobs running at once would each be charged for both. Scaling by the thread's share
        makes concurrent jobs add up to the process total. It needs the job to compute on its own
        thread, which holds with torch.set_num_threads(1) (what the engine's workers use); with
        more intra-op threads their CPU time is invisible here, so we do not attribute at all."""
        if threading.get_ident() != self._thread:
            return None
        torch = sys.modules.get("torch")
        if torch is not None and torch.get_num_threads() > 1:
            return None
        thread_s = time.thread_time() - self._cpu0[0]
        process_s = time.process_time() - self._cpu0[1]
        if process_s < 0.05:  # too little CPU work to apportion
            return None
        return min(1.0, thread_s / process_s)

    def _from_codecarbon(self, tracker, data, share: float | None) -> Footprint:
        raw_kwh = float(data.energy_consumed)
        f = 1.0 if share is None else share
        gpu_kwh = float(data.gpu_energy or 0.0)        # GPUs are metered per device: not apportioned
        cpu_kwh = float(data.cpu_energy) * f
        kwh = (float(data.cpu_energy) + float(data.ram_energy)) * f + gpu_kwh
        duration = float(data.duration)
        if raw_kwh > 0:
            g_per_kwh = float(data.emissions) * 1000 / raw_kwh   # what codecarbon actually applied
        else:
            g_per_kwh = _table_intensity(self.country_iso)
        kind, method = _describe(tracker, data, share, g_per_kwh)
        return Footprint(duration_s=duration, energy_kwh=kwh,
                         emissions_g=None if g_per_kwh is None else kwh * g_per_kwh,
                         cpu_power_w=cpu_kwh * KWH_J / duration if duration > 0 else None,
                         kind=kind, method=method, country_iso=self.country_iso,
                         grid_g_per_kwh=g_per_kwh, process_energy_kwh=raw_kwh, thread_share=share)

    def _fallback(self, wall: float, error: str | None) -> Footprint:
        if self.assumed_watts is None:
            return self._unavailable(wall, error)
        g = _table_intensity(self.country_iso)
        kwh = self.assumed_watts * wall / KWH_J
        why = (": codecarbon's own defaults for one busy thread of an unknown CPU (4 W) plus its RAM "
               "floor (10 W)" if self.assumed_watts == ASSUMED_WATTS else "")
        method = (f"Not measured: codecarbon gave no figure ({error}). Assumed a constant "
                  f"{self.assumed_watts:g} W for {wall:.1f} s{why}. " + _grid_text(self.country_iso, g))
        return Footprint(duration_s=wall, energy_kwh=kwh, emissions_g=None if g is None else kwh * g,
                         cpu_power_w=None, kind="assumed", method=method, country_iso=self.country_iso,
                         grid_g_per_kwh=g, error=error)

    def _unavailable(self, wall: float, error: str | None) -> Footprint:
        return Footprint(duration_s=wall, energy_kwh=None, emissions_g=None, cpu_power_w=None,
                         kind="unavailable", method=f"No energy figure: {error}.",
                         country_iso=self.country_iso, grid_g_per_kwh=None, error=error)


def _start_tracker(iso: str):
    import codecarbon  # imported here: ~0.1 s, and only worker threads pay it

    # codecarbon logs a few lines before it applies log_level: quieten its logger first.
    level = os.environ.get("CODECARBON_LOG_LEVEL", "error")
    try:
        logging.getLogger("codecarbon").setLevel(level.upper())
    except (ValueError, TypeError):
        level = "error"
    tracker = codecarbon.OfflineEmissionsTracker(
        country_iso_code=iso, tracking_mode="process",
        output_methods=[],          # = save_to_file=False without the DeprecationWarning (3.x)
        allow_multiple_runs=True,   # no /tmp lock file: several jobs measure at once
        log_level=level)
    tracker.start()
    # start() is wrapped in codecarbon's @suppress(Exception): a failure only shows as no start time.
    if getattr(tracker, "_start_time", "unknown") is None:
        raise RuntimeError("tracker.start() failed silently")
    return tracker


def _stop_schedulers(tracker) -> None:
    """After a failed stop(), make sure codecarbon's sampling threads do not run on."""
    for name in ("_scheduler", "_scheduler_monitor_power"):
        try:
            getattr(tracker, name).stop()
        except Exception:  # noqa: BLE001
            pass


def _table_intensity(iso: str) -> float | None:
    try:
        return grid_intensity(iso).g_per_kwh
    except CarbonInputError:
        return world_average_g_per_kwh()
    except Exception:  # noqa: BLE001 - codecarbon missing altogether
        return None


def _grid_text(iso: str, g: float | None) -> str:
    if g is None:
        return "No grid intensity available, so no emissions figure."
    try:
        row = grid_intensity(iso)
        return (f"Grid: {row.name} ({row.iso}), {g:.0f} g CO2e/kWh, codecarbon's shipped per-country "
                f"table ({row.year} data).")
    except Exception:  # noqa: BLE001
        return f"Grid: {iso} is not in codecarbon's table, so its world average {g:.0f} g CO2e/kWh."


def _describe(tracker, data, share: float | None, g_per_kwh: float | None) -> tuple[str, str]:
    """How codecarbon got its figure on this machine, read from the tracker it used."""
    hardware = list(getattr(tracker, "_hardware", []) or [])
    by_type = {type(h).__name__: h for h in hardware}
    cpu = by_type.get("CPU")
    mode = getattr(cpu, "_mode", None)
    model = getattr(data, "cpu_model", None) or getattr(cpu, "_model", None) or "unknown CPU"
    parts = [f"codecarbon {getattr(data, 'codecarbon_version', '') or _codecarbon_version()}, "
             f"process mode."]
    if mode in _COUNTER_MODES or "AppleSiliconChip" in by_type or "Raspberry" in by_type:
        kind = "measured"
        parts.append(f"CPU energy read from {_COUNTER_MODES.get(mode, 'the chip power interface')}.")
    elif mode == "cpu_load":
        kind, tdp = "estimated", getattr(cpu, "_tdp", None)
        parts.append(f"CPU power estimated as {tdp} W x the share of the machine's CPU capacity this "
                     "process used: no RAPL energy counters are readable on this machine.")
        if tdp is not None and tdp == 4 * (os.cpu_count() or 0):
            parts.append(f"{tdp} W is codecarbon's default of 4 W per thread for a CPU model it does "
                         f"not know ({model}), not this chip's real TDP.")
        else:
            parts.append(f"{tdp} W is the TDP codecarbon's table gives for {model}.")
    elif mode == "constant":
        kind = "estimated"
        parts.append(f"CPU power assumed constant: half of a {getattr(cpu, '_tdp', '?')} W TDP.")
    else:
        kind = "estimated"
        parts.append("How codecarbon estimated the CPU could not be read from this version of it.")
    ram = by_type.get("RAM")
    if ram is not None and getattr(ram, "_force_ram_power", None) is None:
        parts.append("RAM: codecarbon's model of 5 W per memory module (at least 10 W on x86), not "
                     "measured.")
    if float(getattr(data, "gpu_energy", 0) or 0) > 0:
        parts.append(f"GPU energy read from the driver ({getattr(data, 'gpu_model', '')}).")
    parts.append(_grid_text(str(getattr(data, "country_iso_code", "") or ""), g_per_kwh))
    if share is None:
        parts.append("Whole-process figure: it includes any other job running in this app at the "
                     "same time.")
    else:
        parts.append(f"This job's thread did {share:.0%} of the process's CPU work in the window, so "
                     "its CPU and RAM energy are scaled by that share.")
    return kind, " ".join(parts)


# ------------------------------------------------------------------------------------------------
# Ledger: what the app's own training has used, per session, per page and in all.
# ------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Totals:
    jobs: int = 0
    duration_s: float = 0.0
    energy_kwh: float = 0.0     # sum over jobs that have a figure (measured, estimated or assumed)
    emissions_g: float = 0.0
    assumed: int = 0            # jobs whose figure is an assumed constant power
    unavailable: int = 0        # jobs with no figure, left out of the sums

    def add(self, fp: Footprint) -> None:
        self.jobs += 1
        self.duration_s += fp.duration_s
        if fp.energy_kwh is None:
            self.unavailable += 1
            return
        self.energy_kwh += fp.energy_kwh
        self.emissions_g += fp.emissions_g or 0.0
        self.assumed += int(fp.kind == "assumed")

    def merge(self, other: "Totals") -> "Totals":
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    owner: str
    page: str
    label: str
    footprint: Footprint
    at: float


class FootprintLedger:
    """Thread-safe record of footprints keyed by (session owner, page). Totals are kept per key;
    only the last `keep` entries are kept whole, so memory stays bounded on a busy host."""

    def __init__(self, keep: int = 500):
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str], Totals] = {}
        self._retired: dict[str, Totals] = {}   # per page, from sessions that have ended
        self._recent: collections.deque[LedgerEntry] = collections.deque(maxlen=keep)

    def add(self, owner: str, page: str, footprint: Footprint, label: str = "") -> None:
        with self._lock:
            self._totals.setdefault((owner, page), Totals()).add(footprint)
            self._recent.append(LedgerEntry(owner, page, label, footprint, time.time()))

    def total(self, owner: str | None = None, page: str | None = None) -> Totals:
        """Sum for one session, one page, both, or (no arguments) the whole app."""
        out = Totals()
        with self._lock:
            for (o, p), t in self._totals.items():
                if (owner is None or o == owner) and (page is None or p == page):
                    out.merge(t)
            if owner is None:
                for p, t in self._retired.items():
                    if page is None or p == page:
                        out.merge(t)
        return out

    def by_page(self, owner: str | None = None) -> dict[str, Totals]:
        with self._lock:
            pages = {p for (o, p) in self._totals if owner is None or o == owner}
            if owner is None:
                pages |= set(self._retired)
        return {p: self.total(owner, p) for p in sorted(pages)}

    def recent(self, owner: str | None = None, page: str | None = None, n: int = 50) -> list[LedgerEntry]:
        with self._lock:
            rows = [e for e in self._recent
                    if (owner is None or e.owner == owner) and (page is None or e.page == page)]
        return rows[-n:]

    def forget(self, owner: str) -> None:
        """A session ended: drop its keys, but keep its use in the app's totals."""
        with self._lock:
            for key in [k for k in self._totals if k[0] == owner]:
                self._retired.setdefault(key[1], Totals()).merge(self._totals.pop(key))

    def clear(self) -> None:
        with self._lock:
            self._totals.clear()
            self._retired.clear()
            self._recent.clear()


LEDGER = FootprintLedger()   # the process-wide one; the UI layer wraps nothing around it


# ------------------------------------------------------------------------------------------------
# Calculator for real training runs.
# ------------------------------------------------------------------------------------------------

class CarbonInputError(UserError):
    """A calculator input is missing, not a finite number, or outside what any real training run
    could be. We raise rather than clamp: a silently clamped input gives a wrong answer that looks
    right. The message names the input and its allowed range."""


@dataclasses.dataclass(frozen=True)
class Accelerator:
    key: str
    name: str
    watts: float                # board power (TDP) per device: a ceiling, not the average draw
    peak_flops: float | None    # dense bf16/fp16 tensor FLOP/s per device
    source: str


ACCELERATORS: dict[str, Accelerator] = {a.key: a for a in (
    Accelerator("V100", "NVIDIA V100 SXM2", 300, 125e12,
                "NVIDIA V100 Tensor Core GPU datasheet (2020): SXM2 max power 300 W; "
                "deep-learning (tensor) performance 125 TFLOPS"),
    Accelerator("A100", "NVIDIA A100 SXM4 80GB", 400, 312e12,
                "NVIDIA A100 Tensor Core GPU datasheet (2021): SXM max TDP 400 W; "
                "BF16 tensor 312 TFLOPS dense (624 with 2:4 sparsity)"),
    Accelerator("H100", "NVIDIA H100 SXM5", 700, 989e12,
                "NVIDIA H100 Tensor Core GPU datasheet (2023): SXM max TDP up to 700 W; "
                "BF16 tensor 1,979 TFLOPS with 2:4 sparsity, i.e. 989 dense"),
    Accelerator("TPU v4", "Google TPU v4 chip", 192, 275e12,
                "Google Cloud TPU v4 documentation: 275 TFLOPS peak bf16 per chip; 192 W maximum "
                "chip power (Jouppi et al., ISCA 2023, 'TPU v4: An Optically Reconfigurable "
                "Supercomputer ...')"),
)}

# Bounds on inputs, with why. A million GPUs for a century is ~8.8e11 device-hours: rejected.
LIMITS = {
    # Llama 3 405B trained on up to 16,384 H100s (Dubey et al. 2024, "The Llama 3 Herd of Models",
    # sec. 3.3); 500,000 leaves room for the larger clusters announced since.
    "count": (0.0, 500_000.0),
    "hours": (0.0, 10 * 8_760.0),               # ten years of wall-clock time
    # Llama 3.1 used 39.3 M H100-hours (Meta model card, 2024): 1e9 is 25 times that.
    "device_hours": (0.0, 1e9),
    "watts": (0.0, 5_000.0),                    # per device; the biggest boards draw ~1-3 kW
    "pue": (1.0, 3.0),                          # < 1 is impossible by definition of PUE
    "grid_g_per_kwh": (0.0, 2_000.0),           # 0 allowed: market-based accounting reports 0
    "n_params": (0.0, 1e14),
    "n_tokens": (0.0, 1e15),
    "mfu": (0.0, 1.0),
    "peak_flops": (0.0, 1e17),                  # per device
}
_CLOSED_BELOW = {"pue", "grid_g_per_kwh"}       # these may equal their lower bound


@dataclasses.dataclass(frozen=True, kw_only=True)
class Run:
    """One training run to estimate. Give the time in one of three ways:
    `count` and `hours` (wall-clock); or `device_hours`; or `n_params`, `n_tokens`, `mfu` (and
    `count`, for wall-clock time): FLOPs = 6 N D (Kaplan et al. 2020), device-hours =
    FLOPs / (peak FLOP/s x MFU) / 3600."""
    accelerator: str = "A100"          # a key of ACCELERATORS, or "custom" with `watts`
    count: float | None = None
    hours: float | None = None
    device_hours: float | None = None
    n_params: float | None = None
    n_tokens: float | None = None
    mfu: float | None = None           # model FLOPs utilisation: achieved / peak FLOP/s
    watts: float | None = None         # per device; overrides the accelerator's figure
    peak_flops: float | None = None    # per device; overrides the accelerator's figure
    pue: float = 1.0
    grid_g_per_kwh: float | None = None   # required: a country's value, or any figure 0-2000


@dataclasses.dataclass(frozen=True)
class Factor:
    value: float
    unit: str       # what `value` measures
    label: str      # what a converted amount is called
    source: str


# Conversion factors for "what is that like", each with its source.
US_HOUSEHOLD_KWH_PER_YEAR = Factor(
    10_715, "kWh of electricity per US home per year", "US household-years of electricity",
    "US EIA FAQ 'How much electricity does an American home use?': 10,715 kWh per residential "
    "customer in 2020 (page updated 7 Oct 2021)")
CAR_G_CO2_PER_KM = Factor(
    8_887 / 22.0 / 1.609344, "g CO2 per km, typical US passenger car", "km driven in a typical US car",
    "US EPA, 'Tailpipe Greenhouse Gas Emissions from a Typical Passenger Vehicle', EPA-420-F-23-014 "
    "(June 2023): 8,887 g CO2 per gallon of gasoline at the 22.0 mpg fleet average, about 400 g per "
    "mile; tailpipe CO2 only")
FLIGHT_KG_CO2E = Factor(
    1_984 * LB_KG, "kg CO2e per passenger, New York - San Francisco round trip",
    "passengers flying New York - San Francisco and back",
    "Strubell, Ganesh & McCallum 2019, 'Energy and Policy Considerations for Deep Learning in NLP', "
    "Table 1: 1,984 lbs CO2e")


@dataclasses.dataclass(frozen=True)
class Equivalent:
    amount: float
    factor: Factor

    @property
    def text(self) -> str:
        return f"{_sig(self.amount, 3)} {self.factor.label}"


def equivalents(kwh: float, t_co2e: float) -> list[Equivalent]:
    """Energy in household-years; emissions in car-km and return flights. Works for a Footprint too:
    equivalents(fp.energy_kwh, fp.emissions_g / 1e6)."""
    return [Equivalent(kwh / US_HOUSEHOLD_KWH_PER_YEAR.value, US_HOUSEHOLD_KWH_PER_YEAR),
            Equivalent(t_co2e * 1e6 / CAR_G_CO2_PER_KM.value, CAR_G_CO2_PER_KM),
            Equivalent(t_co2e * 1e3 / FLIGHT_KG_CO2E.value, FLIGHT_KG_CO2E)]


@dataclasses.dataclass(frozen=True)
class Estimate:
    run: Run
    accelerator: Accelerator | None
    watts: float
    device_hours: float
    wall_hours: float | None
    flops: float | None
    it_kwh: float               # at the devices
    kwh: float                  # at the meter: x PUE
    t_co2e: float
    steps: list[str]            # the arithmetic, one line each, for the page
    equivalents: list[Equivalent]


def _sig(x: float, digits: int = 4) -> str:
    """`digits` significant figures (all of a whole number's), thousands separated, no trailing
    zeros: 10,752 and 0.0611, not 1.075e+04. E-notation only past 1e15, where digits stop being readable."""
    if x == 0 or not math.isfinite(x) or abs(x) >= 1e15:
        return f"{x:.{digits}g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    text = f"{x:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if decimals else text


def _num(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CarbonInputError(f"{name} must be a number, not {value!r}.")
    v = float(value)
    lo, hi = LIMITS[name]
    if not math.isfinite(v):
        raise CarbonInputError(f"{name} must be a finite number, not {v}.")
    too_low = v < lo if name in _CLOSED_BELOW else v <= lo
    if too_low or v > hi:
        low = f"at least {lo:g}" if name in _CLOSED_BELOW else f"more than {lo:g}"
        raise CarbonInputError(f"{name} must be {low} and at most {_sig(hi, 6)}; got {_sig(v, 6)}.")
    return v


def estimate(run: Run) -> Estimate:
    """Energy and emissions of a training run. Raises CarbonInputError for bad inputs."""
    acc = ACCELERATORS.get(run.accelerator)
    if acc is None and run.accelerator != "custom":
        raise CarbonInputError(f"Unknown accelerator {run.accelerator!r}: choose one of "
                               f"{', '.join(ACCELERATORS)} or 'custom'.")
    if run.watts is None and acc is None:
        raise CarbonInputError("A custom accelerator needs its power in watts.")
    watts = _num("watts", acc.watts if run.watts is None else run.watts)
    pue, grid = _num("pue", run.pue), _num("grid_g_per_kwh", run.grid_g_per_kwh)
    count = None if run.count is None else _num("count", run.count)
    steps, flops, wall = [], None, None

    uses_flops = any(v is not None for v in (run.n_params, run.n_tokens, run.mfu))
    if sum([uses_flops, run.device_hours is not None, run.hours is not None]) != 1:
        raise CarbonInputError("Give the run's length one way: devices and hours; or device-hours; "
                               "or parameters, tokens and MFU.")
    if uses_flops:
        if None in (run.n_params, run.n_tokens, run.mfu):
            raise CarbonInputError("Estimating from FLOPs needs parameters N, tokens D and MFU.")
        n, d, mfu = _num("n_params", run.n_params), _num("n_tokens", run.n_tokens), _num("mfu", run.mfu)
        if run.peak_flops is None and (acc is None or acc.peak_flops is None):
            raise CarbonInputError("A custom accelerator needs its peak FLOP/s to estimate from FLOPs.")
        peak = _num("peak_flops", acc.peak_flops if run.peak_flops is None else run.peak_flops)
        flops = 6 * n * d
        device_hours = _num("device_hours", flops / (peak * mfu) / 3600)
        steps.append(f"FLOPs = 6 x N x D = 6 x {n:.3g} x {d:.3g} = {flops:.3g}")
        steps.append(f"device-hours = FLOPs / ({peak:.3g} FLOP/s x MFU {mfu:g}) / 3600 s = "
                     f"{_sig(device_hours)}")
        if count is not None:
            wall = _num("hours", device_hours / count)
            steps.append(f"wall-clock = {_sig(device_hours)} / {count:,.0f} devices = {_sig(wall)} h")
    elif run.device_hours is not None:
        device_hours = _num("device_hours", run.device_hours)
        steps.append(f"device-hours = {_sig(device_hours)} (given)")
        if count is not None:
            wall = _num("hours", device_hours / count)
    else:
        if count is None:
            raise CarbonInputError("Give the number of devices as well as the hours.")
        wall = _num("hours", run.hours)
        device_hours = _num("device_hours", count * wall)
        steps.append(f"device-hours = {count:,.0f} devices x {_sig(wall)} h = {_sig(device_hours)}")

    it_kwh = watts * device_hours / 1000
    kwh = it_kwh * pue
    t = kwh * grid / 1e6
    steps += [f"energy at the devices = {_sig(watts, 6)} W x {_sig(device_hours)} h = {_sig(it_kwh)} kWh",
              f"energy at the meter = {_sig(it_kwh)} kWh x PUE {pue:g} = {_sig(kwh)} kWh",
              f"emissions = {_sig(kwh)} kWh x {_sig(grid)} g/kWh = {_sig(t)} t CO2e"]
    return Estimate(run, acc, watts, device_hours, wall, flops, it_kwh, kwh, t, steps,
                    equivalents(kwh, t))


# ------------------------------------------------------------------------------------------------
# Published footprints, as calculator inputs next to the published figures.
# ------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Preset:
    key: str
    name: str
    run: Run
    published_kwh: float | None       # None: the source publishes no energy figure
    published_t_co2e: float
    source: str
    tolerance: float                  # relative: how close the estimate must come (tested)
    notes: tuple[str, ...]            # why estimate and publication differ, and what both leave out
    no_energy_reason: str | None = None


@dataclasses.dataclass(frozen=True)
class Comparison:
    preset: Preset
    estimate: Estimate
    kwh_ratio: float | None           # estimate / published
    t_ratio: float


def compare(preset: Preset) -> Comparison:
    est = estimate(preset.run)
    kwh_ratio = None if preset.published_kwh is None else est.kwh / preset.published_kwh
    return Comparison(preset, est, kwh_ratio, est.t_co2e / preset.published_t_co2e)


STRUBELL_US_G_PER_KWH = 0.954 * LB_KG * 1000  # Strubell et al. 2019, Eq. 2: 0.954 lbs CO2e/kWh (EPA US average)

PRESETS: dict[str, Preset] = {p.key: p for p in (
    Preset(
        "bert-base", "BERT-base (Strubell et al. 2019)",
        # Strubell et al. 2019, ACL, Table 3 row BERT_base: V100x64, 12,041.51 W, 79 h,
        # 1,507 kWh-PUE, 1,438 lbs CO2e. Sec. 4: NVIDIA trains BERT in 3.3 days = 79.2 h on 64 V100s.
        # Sec. 3, Eq. 1: kWh = 1.58 x hours x (CPU + DRAM + GPUs W) / 1000 (1.58 = 2018 average PUE).
        Run(accelerator="V100", count=64, hours=79.2, watts=12_041.51 / 64, pue=1.58,
            grid_g_per_kwh=STRUBELL_US_G_PER_KWH),
        published_kwh=1_507, published_t_co2e=1_438 * LB_KG / 1000,
        source="Strubell, Ganesh & McCallum 2019, 'Energy and Policy Considerations for Deep Learning "
               "in NLP', ACL, Table 3 and Eqs. 1-2",
        tolerance=0.01,
        notes=(
            "Strubell et al. did not measure BERT's training: they took NVIDIA's recipe (64 V100s "
            "for 79.2 h) and the average draw of GPU + CPU + DRAM they measured on their own "
            "hardware, scaled to 64 GPUs: 12,041.51 W, i.e. 188 W per GPU.",
            "Power is multiplied by a PUE of 1.58 (the 2018 data-centre average) and converted with "
            "the US average 0.954 lbs CO2e/kWh (433 g/kWh): 1,507 kWh, 1,438 lbs (652 kg).",
            "With the V100's 300 W board power instead of the measured draw the calculator gives about "
            "2,400 kWh, 1.6 times more: TDP is a ceiling, not an average.",
            "Google trained the original BERT-base on 16 TPU chips for 4 days (Devlin et al. 2019); "
            "Strubell et al. had no TPU power figures, so this is the GPU recipe's footprint.",
            "Location-based (grid average); no embodied emissions of the hardware."),
    ),
    Preset(
        "gpt-3", "GPT-3 175B (Patterson et al. 2021)",
        # Patterson et al. 2021, arXiv:2104.10350, Table 4, GPT-3 column: 10,000 V100s, 14.8 days,
        # 330 W average system power per processor, PUE 1.10, 1,287 MWh, 0.429 kg CO2e/kWh, 552 t.
        Run(accelerator="V100", count=10_000, hours=14.8 * 24, watts=330, pue=1.10, grid_g_per_kwh=429),
        published_kwh=1_287_000, published_t_co2e=552,
        source="Patterson et al. 2021, 'Carbon Emissions and Large Neural Network Training', "
               "arXiv:2104.10350, Table 4",
        tolerance=0.01,
        notes=(
            "330 W is the measured average system power per V100, including its share of host CPU, "
            "memory and network: more than the GPU's own 300 W TDP. At 300 W the calculator gives "
            "0.91 times the published energy.",
            "PUE 1.10 and 429 g/kWh are Patterson et al.'s figures for the Microsoft data centre used "
            "(grid average, location-based).",
            "FLOPs check: 6 x 175e9 parameters x 300e9 tokens = 3.15e23 (Patterson: 3.14e23). Spread "
            "over 10,000 V100s for 14.8 days that is 24.6 TFLOP/s each, about 20% of the V100's "
            "125 TFLOP/s peak: an MFU of about 0.2.",
            "The small gap comes from 14.8 days being rounded. Experiments before the final run and "
            "embodied emissions are not included."),
    ),
    Preset(
        "bloom-176b", "BLOOM 176B (Luccioni et al. 2023)",
        # Luccioni, Viguier & Ligozat 2023, JMLR 24(253), Table 1: 1,082,990 GPU-hours on A100 80GB,
        # 433,196 kWh, grid 57 g CO2e/kWh; Sec. 4: 24.7 t dynamic, 50.5 t with idle and embodied.
        # 384 GPUs: BigScience's BLOOM model card (48 nodes x 8 A100 80GB).
        Run(accelerator="A100", count=384, device_hours=1_082_990, pue=1.0, grid_g_per_kwh=57),
        published_kwh=433_196, published_t_co2e=24.69,
        source="Luccioni, Viguier & Ligozat 2023, 'Estimating the Carbon Footprint of BLOOM, a 176B "
               "Parameter Language Model', JMLR 24(253), Table 1 and Sec. 4",
        tolerance=0.01,
        notes=(
            "Luccioni et al. estimate the GPUs' dynamic consumption exactly as the calculator does: "
            "the A100's 400 W TDP x 1,082,990 GPU-hours = 433,196 kWh, x 57 g/kWh = 24.7 t. TDP makes "
            "it an upper bound for the GPUs' own draw.",
            "Their life-cycle total is 50.5 t: add 14.6 t for the idle and infrastructure consumption "
            "of the Jean Zay cluster and 11.2 t of embodied emissions from making the servers: twice "
            "the energy-only figure.",
            "France's grid is mostly nuclear. The same energy at codecarbon's US average (369 g/kWh) "
            "would be about 160 t: where you train matters more than which GPU."),
    ),
    Preset(
        "llama-2", "Llama 2, all sizes (Touvron et al. 2023)",
        # Touvron et al. 2023, arXiv:2307.09288, Table 2 (and MODEL_CARD.md): 3,311,616 A100-80GB
        # GPU-hours, 539 tCO2eq. 7B: 184,320 h at 400 W, 31.22 t; 34B: 1,038,336 h at 350 W.
        # Grid: implied by the 7B row, 31.22 t / (184,320 h x 0.4 kW) = 423.4 g/kWh; not published.
        Run(accelerator="A100", device_hours=3_311_616, pue=1.0,
            grid_g_per_kwh=31.22e6 / (184_320 * 0.4)),
        published_kwh=None, published_t_co2e=539,
        source="Touvron et al. 2023, 'Llama 2: Open Foundation and Fine-Tuned Chat Models', "
               "arXiv:2307.09288, Table 2; Meta's Llama 2 model card",
        tolerance=0.05,
        no_energy_reason="Meta publishes GPU-hours, a per-GPU power figure and tCO2e, but no kWh and "
                         "no grid intensity; the check is on emissions, with the intensity implied "
                         "by the 7B row.",
        notes=(
            "Meta's power column is 'peak power capacity per GPU ... adjusted for power usage "
            "efficiency': a TDP-style figure with PUE folded in, so PUE is 1 here.",
            "The 34B model (trained, not released) ran on a production cluster capped at 350 W. One "
            "400 W figure for all 3.3 M GPU-hours overestimates by about 4%.",
            "423 g/kWh is back-calculated, not published; it is close to US grid averages.",
            "Meta says 100% of these emissions were offset: that is market-based accounting, the "
            "physical emissions are unchanged. Fine-tuning, experiments and embodied emissions are "
            "not included."),
    ),
    Preset(
        "llama-3", "Llama 3 8B + 70B (Meta model card 2024)",
        # Meta Llama 3 MODEL_CARD.md (April 2024), 'Carbon Footprint': 7.7M GPU-hours on H100-80GB
        # (TDP 700 W), 2,290 tCO2eq (8B: 1.3M h, 390 t; 70B: 6.4M h, 1,900 t).
        # Grid: implied, 2,290 t / (7.7M h x 0.7 kW) = 424.9 g/kWh; not published.
        Run(accelerator="H100", device_hours=7.7e6, pue=1.0, grid_g_per_kwh=2_290e6 / (7.7e6 * 0.7)),
        published_kwh=None, published_t_co2e=2_290,
        source="Meta, Llama 3 model card (MODEL_CARD.md, 18 April 2024), 'Carbon Footprint'",
        tolerance=0.01,
        no_energy_reason="Meta publishes GPU-hours, the 700 W TDP and tCO2e, but no kWh and no grid "
                         "intensity. The intensity here is back-calculated from the total, so the "
                         "emissions match by construction; the real check is that it agrees with "
                         "Llama 2's (423 g/kWh).",
        notes=(
            "Energy implied by the card: 7.7 M H100-hours x 700 W = 5.4 GWh, four times Llama 2, for "
            "over 15 T training tokens against Llama 2's 2 T.",
            "700 W is the H100's TDP ('adjusted for PUE'), not its measured average draw.",
            "Offset 100% (market-based). Meta's later Llama 3.1 card states both ways: 11,390 t "
            "location-based, 0 t market-based, for 39.3 M GPU-hours."),
    ),
)}


# ------------------------------------------------------------------------------------------------
# Myth check.
# ------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class MythCheck:
    claim: str
    claim_kwh: float
    claim_source: str
    fact_kwh: float
    fact_source: str
    household: Factor

    @property
    def overstatement(self) -> float:           # claim / fact
        return self.claim_kwh / self.fact_kwh

    @property
    def fact_household_years(self) -> float:     # about 0.14: one seventh of one home's year
        return self.fact_kwh / self.household.value

    @property
    def claim_household_years(self) -> float:    # about 32: the "30 homes" is right for the wrong kWh
        return self.claim_kwh / self.household.value

    @property
    def verdict(self) -> str:
        return (f"Strubell et al. put BERT-base's training at {self.fact_kwh:,.0f} kWh, about "
                f"1/{1 / self.fact_household_years:.0f} of one US home's electricity for a year. The claim "
                f"is {self.overstatement:,.0f} times that; its '30 homes' is correct arithmetic on the "
                f"wrong number ({self.claim_household_years:.0f} home-years). The paper's headline "
                "figure, 626,155 lbs CO2e or 'five cars over their lifetimes', is for a neural "
                "architecture search (656,347 kWh), not for training BERT.")


MYTH = MythCheck(
    claim="Training BERT took 340,000 kWh, the annual electricity of 30 homes.",
    claim_kwh=340_000,
    claim_source="Often repeated in talks and posts; we found no primary source for it.",
    fact_kwh=PRESETS["bert-base"].published_kwh,
    fact_source=PRESETS["bert-base"].source,
    household=US_HOUSEHOLD_KWH_PER_YEAR,
)


# ------------------------------------------------------------------------------------------------
# The Carbon page's settings, and its experiment: one tiny model trained under each lever.
# ------------------------------------------------------------------------------------------------

LENGTHS = {"hours": "devices x hours", "device_hours": "device-hours", "flops": "parameters x tokens (FLOPs)"}
LEVERS = {"fp32": "fp32 (baseline)", "bf16": "bf16 autocast", "ckpt": "gradient checkpointing",
          "small": "smaller model, same steps", "small_loss": "smaller model, to the baseline's loss"}
SMALL = "50k"            # the smaller model: models.SIZES, a quarter of the baseline's layer parameters
SMALL_LOSS_STEPS = 10    # it may take this many times the baseline's steps to reach the baseline's loss


@dataclasses.dataclass
class CarbonConfig(StageConfig):
    # The calculator's fields have no ranges: estimate() checks them and says what is wrong.
    preset: str = field("", "published run the calculator was filled from", choices=("", *PRESETS))
    accelerator: str = field("A100", "device type", choices=(*ACCELERATORS, "custom"))
    watts: float = field(400.0, "power per device in W: datasheet TDP, or a measured average draw")
    peak_tflops: float = field(312.0, "peak dense TFLOP/s per device (FLOPs estimate)")
    length: str = field("hours", "how the run's length is given", choices=tuple(LENGTHS))
    count: int = field(64, "number of devices")
    hours: float = field(168.0, "wall-clock hours")
    device_hours: int = field(10_752, "device-hours (devices x wall-clock hours)")
    params_b: float = field(7.0, "parameters N, in billions")
    tokens_b: float = field(2_000.0, "training tokens D, in billions")
    mfu: float = field(0.4, "model FLOPs utilisation: achieved / peak FLOP/s")
    pue: float = field(1.1, "power usage effectiveness: data-centre energy / IT energy")
    country: str = field("USA", "grid: ISO 3166 alpha-3 code in codecarbon's table, or custom")
    grid_g: float = field(400.0, "grid intensity in g CO2e/kWh (country=custom)")
    # What-if for the energy measured here.
    whatif: str = field("FRA,SWE,USA,DEU,CHN,IND,POL", "grids to compare, comma-separated ISO codes")
    whatif_pue: float = field(1.0, "PUE applied to the measured energy", range=(1.0, 3.0))
    # The experiment: the baseline always runs; each lever is a variant of it.
    bf16: bool = field(True, LEVERS["bf16"])
    ckpt: bool = field(True, LEVERS["ckpt"])
    small: bool = field(True, LEVERS["small"])
    small_loss: bool = field(True, LEVERS["small_loss"])
    steps: int = field(200, "training steps per variant", range=(1, 20_000))
    eval_every: int = field(25, "steps between validation evaluations", range=(1, 20_000))
    max_seconds: int = field(60, "time limit per variant in seconds", range=(1, 60))   # 5 variants: 300 s, the job limit
    seed: int = field(0, "random seed, the same for every variant")
    # The levers experiment's presets. Below the fields: in the class body above, PRESETS is still
    # the module's published footprints, which the `preset` field's choices name.
    PRESETS = {"quick demo": dict(steps=100, max_seconds=60), "standard": dict(steps=200, max_seconds=60),
               "thorough": dict(steps=600, max_seconds=60)}
    PRESET_NOTES = {"quick demo": "100 steps per variant", "standard": "200 steps per variant",
                    "thorough": "600 steps per variant: steadier energy figures"}

    def grid(self) -> float:
        return self.grid_g if self.country == "custom" else grid_intensity(self.country).g_per_kwh

    def run(self) -> Run:
        """The calculator's inputs; raises CarbonInputError for an unknown country."""
        common = dict(accelerator=self.accelerator, watts=self.watts, pue=self.pue, grid_g_per_kwh=self.grid())
        if self.length == "hours":
            return Run(count=self.count, hours=self.hours, **common)
        if self.length == "device_hours":
            return Run(device_hours=self.device_hours, **common)
        return Run(count=self.count, n_params=self.params_b * 1e9, n_tokens=self.tokens_b * 1e9, mfu=self.mfu,
                   peak_flops=self.peak_tflops * 1e12, **common)

    def with_preset(self, key: str) -> "CarbonConfig":
        """The calculator filled with a published run's inputs, so it reproduces compare()."""
        r = PRESETS[key].run
        acc = ACCELERATORS[r.accelerator]
        return self.replace(
            preset=key, accelerator=r.accelerator, watts=float(r.watts or acc.watts),
            peak_tflops=acc.peak_flops / 1e12, length="hours" if r.hours is not None else "device_hours",
            count=int(r.count or self.count), hours=round(float(r.hours or self.hours), 6),
            device_hours=int(r.device_hours or self.device_hours), pue=float(r.pue), country="custom",
            grid_g=float(r.grid_g_per_kwh))

    def levers(self) -> list:
        """(lever, PretrainConfig) to train in turn: the baseline first, on the built-in corpus."""
        from .pretrain import PretrainConfig
        base = PretrainConfig(corpus="world", objective="clm", steps=self.steps, eval_every=self.eval_every,
                              max_seconds=self.max_seconds, seed=self.seed, bf16=False)
        variants = {"fp32": base, "bf16": base.replace(bf16=True), "ckpt": base.replace(grad_checkpoint=True),
                    "small": base.replace(size=SMALL),
                    "small_loss": base.replace(size=SMALL, steps=self.steps * SMALL_LOSS_STEPS)}
        return [(k, c) for k, c in variants.items() if k == "fp32" or getattr(self, k)]


class _LeverReporter:
    """What one variant reports to: the job, with records tagged by variant and counted in
    job-wide steps and seconds (so the job's progress bar spans every variant). It also tallies
    the tensors autograd keeps for the backward pass, and stops the variant at a target loss."""

    def __init__(self, job, lever: str, step0: int, t0: float, target: float | None):
        self.job, self.lever, self.step0, self.t0, self.target = job, lever, step0, t0, target
        self.info, self.message = {}, ""
        self.steps, self.val_loss, self.reached = 0, None, None
        self.saved = self.peak_saved = 0
        self._seen: set[int] = set()

    def emit(self, r: dict) -> None:
        if "loss" in r:   # a step ended: what its forward pass saved is freed
            self.peak_saved, self.saved = max(self.peak_saved, self.saved), 0
            self._seen.clear()
        if "val_loss" in r:
            self.val_loss = r["val_loss"]
            if self.target is not None and self.reached is None and r["val_loss"] <= self.target:
                self.reached = r["step"]
        self.steps = r.get("step", self.steps)
        out = {**r, "lever": self.lever, "lever_step": self.steps, "step": self.step0 + self.steps}
        if "elapsed" in r:
            out["elapsed"] = self.t0 + r["elapsed"]
        self.job.emit(out)

    def should_stop(self) -> bool:
        return self.job.should_stop() or self.reached is not None

    def wait_if_paused(self) -> None:
        self.job.wait_if_paused()

    def pack(self, t):
        """saved_tensors_hooks pack hook: count each storage autograd keeps once per step. Leaves
        that need a gradient are parameters, in memory anyway: left out."""
        if not (t.is_leaf and t.requires_grad):
            s = t.untyped_storage()
            if s.data_ptr() not in self._seen:
                self._seen.add(s.data_ptr())
                self.saved += s.nbytes()
        return t


def run_levers(cfg: CarbonConfig, job) -> None:
    """The experiment as one job: each variant in turn, measured with its own EnergyMeter, its
    results appended to job.info["levers"]. In turn, not at once: two trainings at once slow each
    other down and blur the comparison. The variants' meters nest inside the job's own one, which
    alone goes into the LEDGER, so nothing is counted twice."""
    import torch

    from . import pretrain
    levers = cfg.levers()
    base = levers[0][1]
    pretrain.prepare(base, pretrain.load_text(base))   # tokenize once, outside every variant's meter
    results, step0, t0, target = [], 0, 0.0, None
    for lever, pcfg in levers:
        if job.should_stop():
            return
        rep = _LeverReporter(job, lever, step0, t0, target if lever == "small_loss" else None)
        meter = EnergyMeter()
        meter.start()
        wall = time.perf_counter()
        try:
            with torch.autograd.graph.saved_tensors_hooks(rep.pack, lambda t: t):
                pretrain.run(pcfg, rep, save=False)
        finally:
            footprint, seconds = meter.stop(), time.perf_counter() - wall
        if job.should_stop():
            return
        params = rep.info["params"]
        results.append({"lever": lever, "label": LEVERS[lever], "params": params, "steps": rep.steps,
                        "planned": pcfg.steps,
                        "seconds": seconds, "footprint": footprint, "saved_bytes": rep.peak_saved,
                        "state_bytes": 16 * params, "val_loss": rep.val_loss, "target": rep.target,
                        "reached": rep.reached})
        job.info = {**job.info, "levers": list(results)}
        target = rep.val_loss if lever == "fp32" else target
        step0, t0 = step0 + rep.steps, t0 + seconds
