"""The energy meter: codecarbon's offline tracker around one job, and the grid intensities it uses.

`EnergyMeter` wraps codecarbon for one job, inside the thread that runs it, and always returns a
`Footprint` that says how its figure was obtained. `grid_intensities()` is the per-country
g CO2e/kWh table codecarbon ships, read through its public `DataSource`. Plain Python, no streamlit.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys
import threading
import time

from engine.core.config import UserError

KWH_J = 3.6e6


class CarbonInputError(UserError):
    """A carbon input is missing, not a finite number, unknown, or outside what any real training
    run could be. We raise rather than clamp: a silently clamped input gives a wrong answer that
    looks right. The message names the input and what is allowed."""


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
    return (f"codecarbon {_codecarbon_version()}'s global energy mix table (codecarbon.input.DataSource): annual "
            "carbon intensity of electricity per country (codecarbon's methodology page credits "
            "Our World in Data, ourworldindata.org/grapher/carbon-intensity-electricity)")


@functools.lru_cache(maxsize=1)
def grid_intensities() -> tuple[GridIntensity, ...]:
    """Every country in codecarbon's table, sorted by name, as its public DataSource reads it."""
    from codecarbon.input import DataSource

    table = DataSource().get_global_energy_mix_data()
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
    from codecarbon.input import DataSource

    return float(DataSource().get_carbon_intensity_per_source_data()["world_average"])


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
                data = tracker.final_emissions_data
                if data is None:
                    error = "codecarbon returned no result (it logs and swallows its own errors)"
            except Exception as e:  # noqa: BLE001
                error = f"codecarbon could not stop: {type(e).__name__}: {e}"
        fp = None
        if data is not None:
            try:
                fp = self._from_codecarbon(data, share)
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

    def _from_codecarbon(self, data, share: float | None) -> Footprint:
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
        kind, method = _describe(data, share, g_per_kwh)
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
    tracker.start()   # wrapped in codecarbon's @suppress(Exception): a failure shows as no result at stop()
    return tracker


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


@functools.lru_cache(maxsize=1)
def _cpu_source() -> tuple[str | None, str, float | None]:
    """How codecarbon reads this machine's CPU power, from its public CPU module: the energy
    counter it can read (None when it has none), the CPU model, and the TDP its table gives it."""
    from codecarbon.core import cpu

    counter = ("RAPL energy counters" if cpu.is_rapl_available() else
               "Intel Power Gadget" if cpu.is_powergadget_available() else None)
    tdp = None if counter else cpu.TDP()
    return counter, (tdp.model if tdp else "") or "unknown CPU", tdp.tdp if tdp else None


def _describe(data, share: float | None, g_per_kwh: float | None) -> tuple[str, str]:
    """How codecarbon got its figure on this machine: its result (EmissionsData) and its CPU module."""
    from codecarbon.core import cpu

    counter, model, tdp = _cpu_source()
    parts = [f"codecarbon {data.codecarbon_version or _codecarbon_version()}, process mode."]
    if counter:
        kind = "measured"
        parts.append(f"CPU energy read from {counter}.")
    else:
        kind = "estimated"
        parts.append(f"CPU power estimated from the share of the machine's CPU capacity this process used "
                     f"(codecarbon's average for it: {float(data.cpu_power or 0):.1f} W): no RAPL energy counters "
                     "are readable on this machine.")
        if tdp is None:
            parts.append(f"codecarbon's table does not know this CPU ({data.cpu_model or model}), so it counts "
                         f"{cpu.DEFAULT_POWER_PER_CORE} W per thread at full load: its default, not this chip's "
                         "real TDP.")
        else:
            parts.append(f"Full load counts as the {tdp:g} W TDP codecarbon's table gives for {model}.")
    parts.append("RAM: codecarbon's model of 5 W per memory module (at least 10 W on x86), not measured.")
    if float(data.gpu_energy or 0) > 0:
        parts.append(f"GPU energy read from the driver ({data.gpu_model}).")
    parts.append(_grid_text(str(data.country_iso_code or ""), g_per_kwh))
    if share is None:
        parts.append("Whole-process figure: it includes any other job running in this app at the "
                     "same time.")
    else:
        parts.append(f"This job's thread did {share:.0%} of the process's CPU work in the window, so "
                     "its CPU and RAM energy are scaled by that share.")
    return kind, " ".join(parts)
