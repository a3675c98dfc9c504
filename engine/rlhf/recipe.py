"""The RLHF page's two jobs, InstructGPT's steps 2 and 3 at toy scale (Ouyang et al. 2022): preferences
(a person's, a simulated labeler's, or a file's) -> a reward model; then the SFT policy pulled toward
the preferences, by PPO against that reward model or by DPO on the pairs (Rafailov et al. 2023).
PPO with no reward model yet trains one first, in the same job, so one click runs all three steps.
The page's runs keep their learning-rate schedule on their steps (policy.settings, by_steps): the
one-click experiment gives the recorded run however busy the machine."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from engine import demos
from engine.core.config import UserError
from engine.core.report import Recorder, Reporter, Segment, StageResult
from engine.rlhf.config import RLHFConfig
from engine.rlhf.dpo import fit_dpo
from engine.rlhf.models import find_reward, load_policy, parent_path
from engine.rlhf.policy import save_policy
from engine.rlhf.ppo import fit_ppo
from engine.rlhf.preferences import Pair, gold_fn, simulate
from engine.rlhf.preferences import prompts as world_prompts
from engine.rlhf.reward_model import fit_reward_model, save_reward_model

_SIMULATED: dict[str, tuple[list[Pair], dict]] = {}
LABELLING = "the simulated labeler compares answers"


def simulated_pairs(cfg: RLHFConfig, reporter: Reporter | None = None) -> list[Pair]:
    """The simulated labeler's pairs on the parent's own answers, made once per setting (the
    reward-model and DPO jobs of one config share them). Reports its progress from the start."""
    reporter = reporter or Recorder()
    key = repr((cfg.parent, cfg.taste, cfg.noise, cfg.n_pairs, cfg.temperature, cfg.max_new_tokens, cfg.seed))
    if key not in _SIMULATED:
        reporter.prepare(LABELLING, 0, cfg.n_pairs)
        _, model, tok = load_policy(cfg.parent)
        pairs, stats = simulate(model, tok, world_prompts(), cfg.taste, cfg.noise, cfg.n_pairs, cfg.seed,
                                cfg.temperature, max_new_tokens=cfg.max_new_tokens, stop=reporter.should_stop,
                                progress=lambda done, total: reporter.prepare(LABELLING, done, total))
        reporter.prepare(LABELLING, cfg.n_pairs, cfg.n_pairs)   # done, even if it ran out of comparisons first
        if reporter.should_stop():
            return pairs
        _SIMULATED[key] = pairs, dataclasses.asdict(stats)
        while len(_SIMULATED) > 8:
            _SIMULATED.pop(next(iter(_SIMULATED)))
    pairs, stats = _SIMULATED[key]
    reporter.set_info(labels={**stats, "kept": len(pairs), "taste": cfg.taste})
    return list(pairs)


def page_gold(cfg: RLHFConfig):
    """The simulated labeler's gold reward; people and files have no formula to check against."""
    return gold_fn(cfg.taste) if cfg.source == "simulated" else None


def run_reward(cfg: RLHFConfig, reporter: Reporter, pairs: list[Pair] | None = None,
               owner: str | None = None) -> StageResult:
    """The page's step 2: pairs (None: the simulated labeler's) -> a saved reward run."""
    pairs = simulated_pairs(cfg, reporter) if pairs is None else pairs
    if reporter.should_stop():
        return StageResult(status="stopped")
    trained = fit_reward_model(cfg, reporter, pairs, gold=page_gold(cfg), by_steps=True)
    return save_reward_model(trained, cfg, pairs, owner)


class Part(Segment):
    """One part of a job (engine.core.report.Segment) whose facts and samples reach the job too:
    under `info_key` as one dict when given (the reward model's facts, beside the policy's)."""

    def __init__(self, job: Reporter, info_key: str | None = None, **kw):
        super().__init__(job, **kw)
        self.info_key = info_key

    def set_info(self, **facts) -> None:
        super().set_info(**facts)
        self.job.set_info(**({self.info_key: dict(self.info)} if self.info_key else facts))

    def add_sample(self, sample: dict) -> None:
        super().add_sample(sample)
        self.job.add_sample(sample)


def reward_then_ppo(cfg: RLHFConfig, reporter: Reporter, pairs: list[Pair] | None = None, owner: str | None = None,
                    save: bool = True) -> StageResult:
    """InstructGPT's steps 2 and 3 in one job: labels, a reward model (saved as this owner's reward
    run when `save`), then PPO against it. Records carry part = "reward model" or "policy" (the
    policy's own step in part_step); the reward model's facts are in info["reward_training"]."""
    gold = page_gold(cfg)
    rm_part = Part(reporter, info_key="reward_training", tags={"part": "reward model"})
    pairs = simulated_pairs(cfg, rm_part) if pairs is None else pairs
    if reporter.should_stop():
        return StageResult(status="stopped")
    rm = fit_reward_model(cfg, rm_part, pairs, gold=gold, by_steps=True)
    if reporter.should_stop():
        return StageResult(status="stopped")
    rm_run = save_reward_model(rm, cfg, pairs, owner).run if save else None
    ppo_part = Part(reporter, tags={"part": "policy"}, step0=rm_part.steps, seconds0=rm_part.seconds)
    one = cfg.replace(reward=Path(rm_run).name) if rm_run else cfg
    tuned = fit_ppo(one, ppo_part, rm_run or rm.model, gold=gold, by_steps=True)
    if not save:
        return tuned.result(None, reward_training=rm.summary())
    return save_policy(tuned, one, owner=owner)


def run_policy(cfg: RLHFConfig, reporter: Reporter, pairs: list[Pair] | None = None, owner: str | None = None,
               also: tuple[str, ...] = ()) -> StageResult:
    """The page's step 3: PPO against the newest reward model for the parent (or cfg.reward), or
    DPO on the pairs (None: the simulated labeler's). PPO with no reward model yet (and none named)
    trains one first (reward_then_ppo). `also`: runs this visitor got from the cache, which count
    as theirs when looking for their reward model."""
    gold = page_gold(cfg)
    parent_name = parent_path(cfg.parent).name
    if cfg.method == "ppo":
        try:
            rm = str(find_reward(cfg.reward, parent_name, owner, also))
        except UserError:
            if cfg.reward:
                raise
            return reward_then_ppo(cfg, reporter, pairs, owner)
        return save_policy(fit_ppo(cfg, reporter, rm, gold=gold, by_steps=True), cfg, owner=owner)
    try:
        reward = str(find_reward(cfg.reward, parent_name, owner, also))
    except UserError:
        reward = None   # DPO needs no reward model; without one the before/after table shows gold scores only
    pairs = simulated_pairs(cfg, reporter) if pairs is None else pairs
    if reporter.should_stop():
        return StageResult(status="stopped")
    return save_policy(fit_dpo(cfg, reporter, pairs, gold=gold, reward=reward, by_steps=True), cfg,
                       owner=owner)


def demo(cfg: RLHFConfig, reporter: Reporter) -> StageResult:
    """A recorded run for the page's first screen (engine/demos.py): labels, a reward model and PPO,
    as a first click runs them, saving nothing."""
    return reward_then_ppo(cfg, reporter, save=False)


# The page's first screen: PPO with its KL leash (the quick demo's defaults: the gold reward rises with
# the reward model's score) and without it, pushed harder (reward hacking: the reward model's score
# rises while the gold reward falls, Gao, Schulman & Hilton 2022). Every setting spelled out, so a
# change of the page's defaults never changes what was recorded; HACKING is the page's one-click.
QUICK = RLHFConfig(parent="", source="simulated", taste="animal", noise=0.05, n_pairs=200, rm_steps=40, rm_lr=1e-3,
                   method="ppo", steps=60, lr=3e-4, batch_size=32, kl_coef=0.05, clip=0.2, ppo_epochs=4,
                   prompts_per_step=4, samples_per_prompt=8, temperature=1.0, max_new_tokens=32, eval_every=10,
                   max_seconds=600, seed=0, bf16=True)
HACKING = QUICK.replace(kl_coef=0.0, lr=1e-3)
KEEP = ("before_after", "reward_training")
demos.register("rlhf-ppo", demo, QUICK, keep=KEEP)
demos.register("rlhf-reward-hacking", demo, HACKING, keep=KEEP)
