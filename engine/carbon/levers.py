"""The Carbon page's settings, and its experiment: one tiny model trained under each lever that
real training uses to save energy (bf16, gradient checkpointing, a smaller model), each measured
with its own energy meter."""
from __future__ import annotations

import dataclasses
import time

import torch

from engine import pretraining
from engine.carbon.calculator import ACCELERATORS, PRESETS, Run
from engine.core.config import StageConfig, field
from engine.core.energy import EnergyMeter, grid_intensity
from engine.core.report import Reporter, Segment, StageResult
from engine.pretraining import PretrainConfig

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
        base = PretrainConfig(corpus="world", objective="clm", steps=self.steps, eval_every=self.eval_every,
                              max_seconds=self.max_seconds, seed=self.seed, bf16=False)
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


def run_levers(cfg: CarbonConfig, reporter: Reporter) -> StageResult:
    """The experiment as one job: each variant in turn, measured with its own EnergyMeter, its
    results appended to info["levers"]. In turn, not at once: two trainings at once slow each
    other down and blur the comparison. The variants' meters nest inside the job's own one, which
    alone goes into the ledger, so nothing is counted twice. The smaller model's second run stops
    once it reaches the baseline's final validation loss."""
    levers = cfg.levers()
    base = levers[0][1]
    pretraining.prepare(base, pretraining.load_text(base))   # tokenize once, outside every variant's meter
    results, step0, t0, target = [], 0, 0.0, None
    for lever, pcfg in levers:
        if reporter.should_stop():
            return StageResult(None, {"levers": results}, "stopped")
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
            return StageResult(None, {"levers": results}, "stopped")
        eval_loss = trained.loop.final_eval.get("eval_loss")
        reached = next((r["step"] for r in part.records if goal is not None and r.get("eval_loss", 1e9) <= goal), None)
        params = trained.facts["params"]
        results.append({"lever": lever, "label": LEVERS[lever], "params": params, "steps": trained.loop.steps,
                        "planned": pcfg.steps, "seconds": seconds, "footprint": footprint, "saved_bytes": tally.peak,
                        "state_bytes": 16 * params, "eval_loss": eval_loss, "target": goal, "reached": reached})
        reporter.set_info(levers=list(results))
        target = eval_loss if lever == "fp32" else target
        step0, t0 = step0 + trained.loop.steps, t0 + seconds
    return StageResult(None, {"levers": [{k: v for k, v in r.items() if k != "footprint"} for r in results]})
