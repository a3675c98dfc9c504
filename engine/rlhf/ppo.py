"""InstructGPT's step 3: the policy samples answers, the reward model scores them, and PPO's
clipped objective pulls the policy toward the higher scores, with a KL penalty that keeps it near
the SFT model (Ouyang et al. 2022, eq. 2, without the pretraining term).

What this toy runs is PPO's clipped objective (Schulman et al. 2017, eq. 7) with several updates
per rollout and a group baseline in place of PPO's learned value network: each answer's advantage
is its reward minus the mean reward of all the answers sampled for the same prompt, then
scaled by the batch's spread. Real PPO for RLHF (InstructGPT, TRL's PPOTrainer) trains a value
network and uses GAE; GRPO (Shao et al. 2024) subtracts the group mean and divides by the group's
standard deviation; RLOO (Ahmadian et al. 2024) subtracts the mean of the other answers.
"""
from __future__ import annotations

import os
import random

import torch

from engine.core.config import UserError
from engine.core.loop import train
from engine.core.report import Reporter
from engine.core.runs import Trained
from engine.rlhf.config import RLHFConfig
from engine.rlhf.losses import approx_kl, group_advantages, penalised_rewards, ppo_clip_loss
from engine.rlhf.models import collate, load_policy, load_reward_model, score, token_logps
from engine.rlhf.policy import ended, gold_of_samples, report_before_after, settings
from engine.rlhf.preferences import prompts as world_prompts
from engine.rlhf.preferences import sample_many, split_prompts, text_of


def fit_ppo(cfg: RLHFConfig, reporter: Reporter, reward, prompt_list: list[str] | None = None,
            parent: str | None = None, gold=None, by_steps: bool = False) -> Trained:
    """PPO's clipped objective against a reward model, with InstructGPT's KL penalty: each answer's
    reward is r(x, y) - kl_coef·log(pi(y|x)/pi_SFT(y|x)). `reward` is a reward run's folder (or a
    loaded sequence classifier); the policy starts from `parent` (None: cfg.parent; empty: the baked
    SFT run). Every cfg.ppo_epochs steps, next_batch samples cfg.samples_per_prompt answers to each
    of cfg.prompts_per_step prompts (default prompts: the world's questions, every fifth held out for
    evaluation) and scores them; each step is one clipped update on that rollout. Reports TRL's
    objective/scores, objective/rlhf_reward, objective/kl, objective/entropy, policy/clipfrac_avg and
    policy/approxkl_avg, and gold_reward (the callable gold(prompt, answer) -> float, on the same
    answers) when given. `by_steps`: see policy.settings."""
    parent = cfg.parent if parent is None else parent
    named = isinstance(reward, (str, os.PathLike))
    rm = load_reward_model(reward)[0] if named else reward
    rm.requires_grad_(False)
    policy_path, model, tok = load_policy(parent)
    _, ref, _ = load_policy(parent)
    ref.requires_grad_(False)
    train_prompts, held_prompts = split_prompts(prompt_list or world_prompts())
    if not train_prompts:
        raise UserError("PPO needs at least one prompt to sample answers to.")
    held_prompts = (held_prompts or train_prompts)[:12]
    batch_of = collate(tok)
    rng = random.Random(cfg.seed)
    P, K = cfg.prompts_per_step, cfg.samples_per_prompt
    rollout: dict = {}

    @torch.no_grad()
    def make_rollout(step):
        rows, texts, prompts_used = [], [], []
        chosen = [rng.choice(train_prompts) for _ in range(P)]
        # All P x K answers in one generate call (left-padded): several times faster than one call a prompt.
        sampled = sample_many(model, tok, chosen, K, cfg.seed * 1_000_003 + step * 101, cfg.temperature,
                              cfg.max_new_tokens)
        for prompt, (p_ids, answers) in zip(chosen, sampled):
            for a in answers:
                rows.append({"input_ids": p_ids + a, "labels": [-100] * len(p_ids) + a})
                texts.append(text_of(tok, a))
                prompts_used.append(prompt)
        b = dict(batch_of(rows))
        with torch.autocast("cpu", torch.bfloat16, enabled=cfg.bf16):   # as in loss_fn: the first ratio is exactly 1
            old, mask = token_logps(model, b)
            ref_lp, _ = token_logps(ref, b)
        scores = torch.tensor([s for j in range(P) for s in score(rm, tok, prompts_used[j * K], texts[j * K:(j + 1) * K],
                                                                    cfg.bf16)])
        total, kl = penalised_rewards(scores, old, ref_lp, mask, cfg.kl_coef)
        adv = group_advantages(total, K)
        b.update(old_logps=old, advantages=adv)
        stats = {"objective/scores": scores.mean().item(), "objective/kl": kl.mean().item(),
                 "objective/entropy": (-(old * mask).sum(1)).mean().item(),
                 "objective/rlhf_reward": total.mean().item(), "answer_length": mask.sum(1).float().mean().item()}
        if gold is not None:
            stats["gold_reward"] = sum(gold(p, t) for p, t in zip(prompts_used, texts)) / len(texts)
        b["stats"] = stats
        b["texts"] = list(zip(prompts_used[::K], texts[::K]))
        return b

    def next_batch(step):
        if (step - 1) % cfg.ppo_epochs == 0:
            try:
                rollout.clear()
                rollout.update(make_rollout(step))
            except RuntimeError as e:   # sampling from NaN probabilities
                raise UserError(f"The policy broke down at step {step} ({e}): lower the learning rate.") from None
        return rollout

    def loss_fn(model, b):
        lp, mask = token_logps(model, b)
        loss, clipfrac = ppo_clip_loss(lp, b["old_logps"], b["advantages"], mask, cfg.clip)
        return loss, {**b["stats"], "policy/clipfrac_avg": clipfrac,
                      "policy/approxkl_avg": approx_kl(lp.detach(), b["old_logps"], mask)}

    def evaluate(step, final):
        return gold_of_samples(model, tok, held_prompts, gold, cfg, seed=cfg.seed * 7919 + 1, rm=rm) \
            if gold is not None else {}

    def after_eval(step, final):
        if rollout:
            reporter.add_sample({"step": step, "answers": rollout["texts"]})

    facts = {"params": model.num_parameters(), "parent": policy_path.name, "method": "ppo",
             "reward_model": os.path.basename(str(reward).rstrip("/")) if named else "given"}
    reporter.set_info(**facts)
    loop = settings(cfg, cfg.steps, cfg.lr, by_steps, diverge_ratio=0)
    result = ended(train(model, loss_fn, next_batch, loop, reporter, evaluate, after_eval=after_eval), [])
    report_before_after(reporter, ref, model, tok, held_prompts, rm, gold, cfg.bf16)
    return Trained(model, tok, result, facts)
