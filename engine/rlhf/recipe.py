"""The RLHF page's two jobs, InstructGPT's steps 2 and 3 at toy scale (Ouyang et al. 2022): preferences
(a person's, a simulated labeler's, or a file's) -> a reward model; then the SFT policy pulled toward
the preferences, by PPO against that reward model or by DPO on the pairs (Rafailov et al. 2023)."""
from __future__ import annotations

import dataclasses

from engine.core.config import UserError
from engine.core.report import Recorder, Reporter, StageResult
from engine.rlhf.config import RLHFConfig
from engine.rlhf.dpo import fit_dpo
from engine.rlhf.models import find_reward, load_policy, parent_path
from engine.rlhf.policy import save_policy
from engine.rlhf.ppo import fit_ppo
from engine.rlhf.preferences import Pair, gold_fn, simulate
from engine.rlhf.preferences import prompts as world_prompts
from engine.rlhf.reward_model import fit_reward_model, save_reward_model

_SIMULATED: dict[str, tuple[list[Pair], dict]] = {}


def simulated_pairs(cfg: RLHFConfig, reporter: Reporter | None = None) -> list[Pair]:
    """The simulated labeler's pairs on the parent's own answers, made once per setting (the
    reward-model and DPO jobs of one config share them)."""
    reporter = reporter or Recorder()
    key = repr((cfg.parent, cfg.taste, cfg.noise, cfg.n_pairs, cfg.temperature, cfg.max_new_tokens, cfg.seed))
    if key not in _SIMULATED:
        _, model, tok = load_policy(cfg.parent)
        reporter.prepare("the simulated labeler compares pairs of answers", 0, cfg.n_pairs)
        pairs, stats = simulate(model, tok, world_prompts(), cfg.taste, cfg.noise, cfg.n_pairs, cfg.seed,
                                cfg.temperature, max_new_tokens=cfg.max_new_tokens, stop=reporter.should_stop,
                                progress=lambda done, total: reporter.prepare(
                                    "the simulated labeler compares pairs of answers", done, total))
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
    trained = fit_reward_model(cfg, reporter, pairs, gold=page_gold(cfg))
    return save_reward_model(trained, cfg, pairs, owner)


def run_policy(cfg: RLHFConfig, reporter: Reporter, pairs: list[Pair] | None = None, owner: str | None = None,
               also: tuple[str, ...] = ()) -> StageResult:
    """The page's step 3: PPO against the newest reward model for the parent (or cfg.reward), or
    DPO on the pairs (None: the simulated labeler's). `also`: runs this visitor got from the
    cache, which count as theirs when looking for their reward model."""
    gold = page_gold(cfg)
    parent_name = parent_path(cfg.parent).name
    if cfg.method == "ppo":
        rm = str(find_reward(cfg.reward, parent_name, owner, also))
        return save_policy(fit_ppo(cfg, reporter, rm, gold=gold), cfg, owner=owner)
    try:
        reward = str(find_reward(cfg.reward, parent_name, owner, also))
    except UserError:
        reward = None   # DPO needs no reward model; without one the before/after table shows gold scores only
    pairs = simulated_pairs(cfg, reporter) if pairs is None else pairs
    if reporter.should_stop():
        return StageResult(status="stopped")
    return save_policy(fit_dpo(cfg, reporter, pairs, gold=gold, reward=reward), cfg, owner=owner)
