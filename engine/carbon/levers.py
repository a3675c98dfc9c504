"""The Carbon page's settings, and its experiment: one tiny model trained under each lever that
real training uses to save energy (bf16, gradient checkpointing, a smaller model), each measured
with its own energy meter."""
from __future__ import annotations

import dataclasses
import math
import os
import time

import torch

from engine import demos, pretraining
from engine.carbon.calculator import ACCELERATORS, PRESETS, Run
from engine.core.config import StageConfig, field
from engine.core.energy import EnergyMeter, grid_intensity
from engine.core.report import Recorder, Reporter, Segment, StageResult
from engine.pretraining import PretrainConfig

LENGTHS = {"hours": "devices x hours", "device_hours": "device-hours", "flops": "parameters x tokens (FLOPs)"}
LEVERS = {"fp32": "fp32 (baseline)", "bf16": "bf16 autocast", "ckpt": "gradient checkpointing",
          "small": "smaller model, same steps", "small_loss": "smaller model, to the baseline's loss"}
SMALL = "50k"            # the smaller model: models.SIZES, a quarter of the baseline's layer parameters
SMALL_LOSS_STEPS = 10    # it may take this many times the baseline's steps to reach the baseline's loss
WARM_STEPS = 3           # untimed baseline steps before the first meter starts


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
    steps: int = field(50, "training steps per variant", range=(1, 20_000))
    eval_every: int = field(10, "steps between validation evaluations", range=(1, 20_000))
    max_seconds: int = field(60, "time limit per variant in seconds", range=(1, 60))   # 5 variants: 300 s, the job limit
    seed: int = field(0, "random seed, the same for every variant")
    # The levers experiment's presets; the defaults ARE the quick demo. Below the fields: in the class
    # body above, PRESETS is still the module's published footprints, which the `preset` field's choices name.
    PRESETS = {"quick demo": dict(steps=50, eval_every=10, max_seconds=60),
               "standard": dict(steps=200, eval_every=25, max_seconds=60),
               "thorough": dict(steps=600, eval_every=50, max_seconds=60)}
    PRESET_NOTES = {"quick demo": "50 steps per variant, all five in about 20 s on a quiet 2-core machine: the "
                                  "memory and energy effects show, the losses are still high",
                    "standard": "200 steps per variant: about a minute and a half on a quiet machine, longer "
                                "when it is busy; lower losses",
                    "thorough": "600 steps per variant: several minutes; steadier energy figures"}

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
        # The model and recipe pinned here, not taken from the Pretraining page's defaults, which may change.
        base = PretrainConfig(corpus="world", tokenizer="char", objective="clm", arch="gpt2", size="200k",
                              block_size=64, batch_size=16, lr=3e-3, warmup=min(30, self.steps // 5),
                              steps=self.steps, eval_every=self.eval_every, max_seconds=self.max_seconds,
                              seed=self.seed, bf16=False, grad_checkpoint=False)
        variants = {"fp32": base, "bf16": base.replace(bf16=True), "ckpt": base.replace(grad_checkpoint=True),
                    "small": base.replace(size=SMALL),
                    "small_loss": base.replace(size=SMALL, steps=self.steps * SMALL_LOSS_STEPS)}
        return [(k, c) for k, c in variants.items() if k == "fp32" or getattr(self, k)]


class SavedTensors:
    """Tallies the tensors autograd keeps for the backward pass (a saved_tensors_hooks pack hook):
    what gradient checkpointing saves. Each storage is counted once per step; leaves that need a
    gradient are parameters, in memory anyway, so they are left out."""

    def __init__(self):
        self.saved = self.peak = 0
        self._seen: set[int] = set()

    def step_ended(self) -> None:
        """What a step's forward pass saved is freed once its backward pass ran."""
        self.peak, self.saved = max(self.peak, self.saved), 0
        self._seen.clear()

    def pack(self, t):
        if not (t.is_leaf and t.requires_grad):
            s = t.untyped_storage()
            if s.data_ptr() not in self._seen:
                self._seen.add(s.data_ptr())
                self.saved += s.nbytes()
        return t


def bf16_instructions() -> bool | None:
    """Whether this CPU has bfloat16 instructions (AVX-512 BF16 or AMX): without them bf16 autocast is
    emulated, and slower. None where the CPU's flags cannot be read (not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


def run_levers(cfg: CarbonConfig, reporter: Reporter) -> StageResult:
    """The experiment as one job: each variant in turn, measured with its own EnergyMeter, its
    results appended to info["levers"]. In turn, not at once: two trainings at once slow each
    other down and blur the comparison. The variants' meters nest inside the job's own one, which
    alone goes into the ledger, so nothing is counted twice. The smaller model's second run stops
    once it reaches the baseline's final validation loss."""
    levers = cfg.levers()
    base = levers[0][1]
    load = os.getloadavg()[0]   # the machine's load, at its highest between variants: a busy machine slows them all
    reporter.set_info(load=load, cores=os.cpu_count(), bf16_instructions=bf16_instructions())
    data = pretraining.prepare(base, pretraining.load_text(base))   # tokenize once, outside every variant's meter
    reporter.set_info(vocab=len(data.tokenizer), uniform_loss=math.log(len(data.tokenizer)))   # ln V: a uniform guess
    # A few untimed steps first: the process's first training pays one-off costs (kernels chosen, memory
    # allocated) that would otherwise be booked to the baseline alone and flatter every lever after it.
    pretraining.fit(base.replace(steps=WARM_STEPS, eval_every=WARM_STEPS, warmup=0), Recorder(), samples=False)
    results, step0, t0, target = [], 0, 0.0, None
    for lever, pcfg in levers:
        if reporter.should_stop():
            return StageResult(None, summary(results), "stopped")
        goal = target if lever == "small_loss" else None
        tally = SavedTensors()

        def step_or_target(r: dict, goal=goal, tally=tally) -> bool:
            if "loss" in r:
                tally.step_ended()
            return goal is not None and "eval_loss" in r and r["eval_loss"] <= goal

        part = Segment(reporter, tags={"lever": lever}, step0=step0, seconds0=t0, stop_when=step_or_target)
        meter = EnergyMeter()
        meter.start()
        wall = time.perf_counter()
        try:
            with torch.autograd.graph.saved_tensors_hooks(tally.pack, lambda t: t):
                trained = pretraining.fit(pcfg, part, samples=False)
        finally:
            footprint, seconds = meter.stop(), time.perf_counter() - wall
        if reporter.should_stop():
            return StageResult(None, summary(results), "stopped")
        eval_loss = trained.loop.final_eval.get("eval_loss")
        reached = next((r["step"] for r in part.records if goal is not None and r.get("eval_loss", 1e9) <= goal), None)
        params = trained.facts["params"]
        results.append({"lever": lever, "label": LEVERS[lever], "params": params, "steps": trained.loop.steps,
                        "planned": pcfg.steps, "seconds": seconds, "footprint": footprint, "saved_bytes": tally.peak,
                        "state_bytes": 16 * params, "eval_loss": eval_loss, "target": goal, "reached": reached})
        load = max(load, os.getloadavg()[0])
        reporter.set_info(levers=list(results), load=load)
        target = eval_loss if lever == "fp32" else target
        step0, t0 = step0 + trained.loop.steps, t0 + seconds
    return StageResult(None, summary(results))


def summary(results: list[dict]) -> dict:
    """The job's summary: every finished variant (without its meter's object), and one flat number per
    variant for the lessons and the room's view, which read only numbers: `saved_bytes/<lever>` (bytes
    kept for the backward pass at its peak, e.g. `saved_bytes/ckpt` against `saved_bytes/fp32`),
    `eval_loss/<lever>` and, where codecarbon gave one, `energy_kwh/<lever>`."""
    out: dict = {"levers": [{k: v for k, v in r.items() if k != "footprint"} for r in results]}
    for r in results:
        out[f"saved_bytes/{r['lever']}"] = r["saved_bytes"]
        if r["eval_loss"] is not None:
            out[f"eval_loss/{r['lever']}"] = r["eval_loss"]
        if r["footprint"] is not None and r["footprint"].available:
            out[f"energy_kwh/{r['lever']}"] = r["footprint"].energy_kwh
    return out


# The page's experiment before anyone runs it: the quick demo's five variants, recorded by
# `python -m engine demo carbon-levers` (steps bound it; its times and energies are this machine's).
DEMO = "carbon-levers"
demos.register(DEMO, run_levers, CarbonConfig(),
               keep=("levers", "load", "cores", "vocab", "uniform_loss", "bf16_instructions"))
