"""The constitutional AI page's settings: the helpful-only start, the constitution (which travels in
the link as JSON), the judge, SL-CAI and RLAIF."""
from __future__ import annotations

import dataclasses
import json
import typing

from engine.cai import constitution as C
from engine.core import limits
from engine.core.config import StageConfig, UserError, field

HELPFUL_ONLY = "sft-helpful-only"   # the baked starting point


def constitution_json(principles: list[C.Principle]) -> str:
    return json.dumps([[p.name, p.text] for p in principles])


def parse_constitution(text: str) -> list[C.Principle]:
    """The constitution as the config (and the link) carries it: JSON [[name, text], ...]."""
    try:
        rows = json.loads(text) if text.strip() else []
        return [C.Principle(str(n or ""), str(t or "")) for n, t in rows]
    except (ValueError, TypeError):
        raise UserError("The constitution in this link is not readable: press 'Restore the defaults'.") from None


@dataclasses.dataclass
class CAIConfig(StageConfig):
    # The defaults ARE the quick demo: a first Train finishes within about 30 s on a quiet 2-core machine.
    PRESETS: typing.ClassVar[dict[str, dict]] = {
        "quick demo": dict(judge_examples=16, n_samples=2, sl_steps=150, sl_helpful=200, n_pairs=40, dpo_steps=20,
                           compare_human=False, max_seconds=120),
        "standard": dict(judge_examples=24, n_samples=4, sl_steps=300, sl_helpful=200, n_pairs=200, dpo_steps=60,
                         compare_human=False, max_seconds=150),
        "thorough": dict(judge_examples=48, n_samples=6, sl_steps=600, sl_helpful=200, n_pairs=600, dpo_steps=150,
                         compare_human=True, max_seconds=300)}
    PRESET_NOTES: typing.ClassVar[dict[str, str]] = {
        "quick demo": "a short SL-CAI and a few DPO steps on up to 40 AI labels: about 20-25 s on a quiet 2-core "
                      "machine; violations fall, mostly in SL-CAI",
        "standard": "the settings measured in bench/RESULTS.md (seeds 0 to 2): about a minute on a quiet machine, "
                    "longer when it is busy",
        "thorough": "a better judge, more pairs, and the same DPO on simulated human labels to compare: a few "
                    "minutes"}
    start: str = field(HELPFUL_ONLY, "folder name of the helpful-only SFT run to start from")
    constitution: str = field(constitution_json(C.default_constitution()), "the principles, JSON [[name, text], ...]",
                              private=True)   # text a person typed: kept out of the room's view of everyone's runs
    judge_examples: int = field(16, "labelled answers per principle the judge's head learns from", range=(4, 200))
    n_samples: int = field(2, "answers sampled per red-team prompt: the first is critiqued, the others are "
                              "revision candidates", range=(1, 16))
    sl_steps: int = field(150, "SL-CAI: SFT steps on the revisions (helpful rows mixed in)", range=(1, 10_000))
    sl_lr: float = field(1e-3, "SL-CAI peak learning rate", range=(1e-6, 1.0))
    sl_helpful: int = field(200, "helpful rows per SFT family mixed into SL-CAI, against forgetting", range=(0, 1000))
    n_pairs: int = field(40, "most answer pairs the AI feedback model labels for RLAIF (it goes round the "
                              "prompts three times at most)", range=(8, 5000))
    method: str = field("dpo", "policy optimisation on the AI labels (the RLHF page's)", choices=("dpo", "ppo"))
    dpo_steps: int = field(20, "most RLAIF policy steps (and at most three passes over the pairs)", range=(1, 10_000))
    dpo_lr: float = field(5e-5, "RLAIF peak learning rate", range=(1e-7, 1.0))
    beta: float = field(0.1, "DPO's beta: how strongly the policy is held to the SL-CAI model", range=(0.01, 10.0))
    compare_human: bool = field(False, "also run the same optimisation on simulated human labels (RLHF), to compare")
    human_noise: float = field(0.1, "share of pairs the simulated human labels the wrong way round", range=(0.0, 0.5))
    max_seconds: int = field(120, "time limit of the whole run in seconds: a safety net; the presets finish well "
                                  "before it on a quiet machine", range=(10, limits.MAX_JOB_SECONDS))
    seed: int = field(0, "random seed: same seed and constitution give the same run")

    def principles(self) -> list[C.Principle]:
        return C.check(parse_constitution(self.constitution))


PRESETS = CAIConfig.PRESETS


