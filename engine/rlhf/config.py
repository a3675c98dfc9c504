"""The RLHF page's settings: where the preferences come from, the reward model, and the policy method."""
from __future__ import annotations

import dataclasses

from engine.core import limits
from engine.core.config import StageConfig, field
from engine.rlhf.preferences import TASTES

SOURCES = ("simulated", "human", "upload")
METHODS = ("ppo", "dpo")
METHOD_LR = {"ppo": 3e-4, "dpo": 1e-4}   # what the page sets when the method changes (measured: DPO degraded at 3e-4)
MIN_PAIRS = 8   # fewer cannot give both a training and a held-out set


@dataclasses.dataclass
class RLHFConfig(StageConfig):
    PRESETS = {"quick demo": dict(n_pairs=200, rm_steps=40, steps=60, eval_every=10, max_seconds=120),
               "standard": dict(n_pairs=400, rm_steps=80, steps=120, eval_every=20, max_seconds=180),
               "thorough": dict(n_pairs=1000, rm_steps=200, steps=300, eval_every=25, max_seconds=300)}
    PRESET_NOTES = {"quick demo": "200 comparisons, a 40-step reward model and 60 PPO steps: about 20-30 s on a quiet "
                                  "2-core machine, labels included",
                    "standard": "400 comparisons and twice the steps: about a minute, longer when the machine is busy",
                    "thorough": "1,000 comparisons and 300 policy steps: several minutes"}
    parent: str = field("", "folder name of the SFT run to start from (empty: the baked SFT run)")
    source: str = field("simulated", "where the preference pairs come from", choices=SOURCES)
    taste: str = field("animal", "the simulated labeler's hidden taste", choices=tuple(TASTES))
    noise: float = field(0.05, "share of comparisons the simulated labeler gets the wrong way round", range=(0.0, 0.5))
    n_pairs: int = field(200, "comparisons the simulated labeler makes (ties not counted)", range=(1, 5000))
    rm_steps: int = field(40, "reward-model training steps", range=(1, 100_000))
    rm_lr: float = field(1e-3, "reward-model peak learning rate", range=(1e-6, 1.0))
    method: str = field("ppo", "policy optimisation: PPO against the reward model, or DPO on the pairs",
                        choices=METHODS)
    steps: int = field(60, "policy training steps", range=(1, 100_000))
    lr: float = field(3e-4, "policy peak learning rate (the page sets 3e-4 for PPO and 1e-4 for DPO, "
                            "which degraded at 3e-4 here)", range=(1e-7, 10.0))
    batch_size: int = field(32, "preference pairs per step (reward model, DPO)", range=(1, 256))
    beta: float = field(0.1, "DPO's beta: how strongly the policy is held to the SFT model "
                             "(0.1 in Rafailov et al. 2023 and TRL)", range=(0.001, 10.0))
    kl_coef: float = field(0.05, "PPO's KL penalty per nat of divergence from the SFT model "
                                 "(TRL's default 0.05); 0 lets the policy go anywhere the reward model pays",
                           range=(0.0, 10.0))
    clip: float = field(0.2, "PPO's clip range epsilon (0.2 in Schulman et al. 2017)", range=(0.01, 1.0))
    ppo_epochs: int = field(4, "PPO updates per batch of sampled answers (TRL's num_ppo_epochs 4)", range=(1, 16))
    prompts_per_step: int = field(4, "prompts per PPO rollout", range=(1, 64))
    samples_per_prompt: int = field(8, "answers sampled per prompt in a PPO rollout", range=(2, 64))
    temperature: float = field(1.0, "sampling temperature for labels and rollouts", range=(0.1, 3.0))
    max_new_tokens: int = field(32, "longest answer sampled, in tokens", range=(1, 64))
    reward: str = field("", "folder name of the reward-model run PPO optimises (empty: the newest one)")
    eval_every: int = field(10, "steps between evaluations", range=(1, 100_000))
    max_seconds: int = field(120, "time limit in seconds for each training (reward model, policy): a safety net",
                             range=(1, limits.MAX_JOB_SECONDS))
    seed: int = field(0, "random seed: same seed and data give the same curves")
    bf16: bool = field(True, "bfloat16 autocast")


