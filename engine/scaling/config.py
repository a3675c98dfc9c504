"""The Model scaling page's settings: one config per experiment, joined into the page's one link."""
from __future__ import annotations

import dataclasses
import math

from engine.core import limits
from engine.core.config import StageConfig, UserError, field


@dataclasses.dataclass
class Common(StageConfig):
    corpus: str = field("python-docs", "text every model learns, one character per token",
                        choices=("python-docs", "world"))
    block_size: int = field(64, "context length in characters", range=(16, 256))
    batch_size: int = field(16, "sequences per step", range=(1, 128))
    lr_scale: float = field(1.0, "multiplies Kaplan's learning rate by size, LR(N)", range=(0.1, 10.0))
    seed: int = field(0, "random seed: same seed, same curves")


@dataclasses.dataclass
class SweepConfig(Common):
    arch: str = field("gpt2", "gpt2, llama (RoPE, RMSNorm, SwiGLU) or both side by side",
                      choices=("gpt2", "llama", "both"))
    n_models: int = field(4, "how many sizes", range=(1, 6))
    min_params: int = field(20_000, "smallest non-embedding size", range=(500, limits.MAX_PARAMS))
    max_params: int = field(500_000, "largest non-embedding size", range=(500, limits.MAX_PARAMS))
    tokens: int = field(150_000, "training tokens for every model", range=(1_000, 20_000_000))

    def archs(self) -> list["SweepConfig"]:
        return [self.replace(arch="gpt2"), self.replace(arch="llama")] if self.arch == "both" else [self]


@dataclasses.dataclass
class IsoConfig(Common):
    budgets: str = field("1e10,3e10", "compute budgets in FLOPs, comma-separated (C ≈ 6·N·D)")
    iso_models: int = field(5, "sizes per budget", range=(3, 7))
    iso_min: int = field(700, "smallest size", range=(500, limits.MAX_PARAMS))
    iso_max: int = field(50_000, "largest size", range=(500, limits.MAX_PARAMS))

    def budget_list(self) -> list[float]:
        try:
            out = sorted({float(b) for b in self.budgets.replace(";", ",").split(",") if b.strip()})
        except ValueError:
            raise UserError(f"Budgets {self.budgets!r} are not numbers: write them like 3e10,1e11.") from None
        if not out or any(not (b > 0 and math.isfinite(b)) for b in out):
            raise UserError("Give one to three positive compute budgets, like 3e10,1e11.")
        if len(out) > 3:
            raise UserError(f"{len(out)} budgets would not finish in the time limit: pick at most three.")
        return out


@dataclasses.dataclass
class OverfitConfig(Common):
    of_chars: int = field(5_000, "characters of training text, repeated epoch after epoch", range=(2_000, 200_000))
    of_epochs: int = field(60, "passes over that text", range=(1, 500))
    of_small: int = field(5_000, "the small model's size", range=(500, limits.MAX_PARAMS))
    of_large: int = field(200_000, "the large model's size", range=(500, limits.MAX_PARAMS))
    # Twice Kaplan's rate: memorising within a minute's training needs large steps (1x only flattens out).
    of_lr_scale: float = field(2.0, "multiplies Kaplan's learning rate by size for these two", range=(0.1, 10.0))


@dataclasses.dataclass
class PruneConfig(StageConfig):
    prune_run: str = field("pretrain-base-gpt", "the trained model to prune (a run folder's name)")


@dataclasses.dataclass
class DistillConfig(StageConfig):
    teacher: str = field("", "the teacher: a run folder's name, or empty to train one on Python's docs first")
    teacher_steps: int = field(500, "steps for a new teacher (when none is picked)", range=(20, 5_000))
    st_layers: int = field(2, "student layers", range=(1, 8))
    st_width: int = field(32, "student width", range=(16, 256))
    st_steps: int = field(300, "training steps for each student", range=(10, 20_000))
    st_lr: float = field(3e-3, "student peak learning rate", range=(1e-5, 0.1))
    temperature: float = field(1.0, "softens both distributions before matching them (Hinton 2015)",
                               range=(0.5, 20.0))
    alpha: float = field(0.9, "weight of the teacher's soft targets against the true next token", range=(0.0, 1.0))
    seed: int = field(0, "random seed: same seed, same curves")


@dataclasses.dataclass
class CalcConfig(StageConfig):
    flops: float = field(5.76e23, "training compute budget in FLOPs", range=(1.0, 1e30))


@dataclasses.dataclass
class ScalingConfig(SweepConfig, IsoConfig, OverfitConfig, PruneConfig, DistillConfig, CalcConfig):
    """The Model scaling page: every section's settings in one link."""
    PRESETS = {"quick demo": dict(n_models=4, min_params=20_000, max_params=500_000, tokens=150_000),
               "standard": dict(n_models=5, min_params=20_000, max_params=2_000_000, tokens=300_000),
               "thorough": dict(n_models=6, min_params=20_000, max_params=4_000_000, tokens=600_000)}
    # The defaults are the quick demo: about 18 s of CPU (44 s on this 2-core machine at load 7).
    PRESET_NOTES = {"quick demo": "4 sizes up to 500k parameters on 150k tokens each: within 30 s",
                    "standard": "5 sizes up to 2M parameters on 300k tokens each: two minutes or more",
                    "thorough": "6 sizes up to 4M parameters on 600k tokens each, a longer law: up to the "
                                "5-minute limit"}

    def part(self, cls: type[StageConfig]) -> StageConfig:
        return cls.from_dict(self.to_dict())
