"""The losses of RLHF and DPO, as published, each checked against its formula in tests/test_rlhf.py."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(r(x, y_w) - r(x, y_l)), averaged: the reward model's loss (Ouyang et al. 2022,
    eq. 1, one comparison per prompt), the Bradley & Terry (1952) model's likelihood of the labels."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO (Rafailov et al. 2023, eq. 7) from summed answer log-probabilities:
    -log sigmoid(beta·log(pi(y_w)/ref(y_w)) - beta·log(pi(y_l)/ref(y_l))). Returns the mean loss and
    the implicit rewards beta·log(pi/ref) of chosen and rejected answers (TRL's rewards/chosen, ...)."""
    chosen = beta * (policy_chosen - ref_chosen)
    rejected = beta * (policy_rejected - ref_rejected)
    return -F.logsigmoid(chosen - rejected).mean(), chosen.detach(), rejected.detach()


def ppo_clip_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                  clip: float) -> tuple[torch.Tensor, float]:
    """PPO's clipped surrogate (Schulman et al. 2017, eq. 7), negated to be minimised, per answer
    token: -min(r·A, clip(r, 1-eps, 1+eps)·A) with r = pi(token)/pi_old(token) and the answer's
    advantage A on each of its tokens; averaged over tokens. Returns it and the share of tokens
    where the clip binds (TRL's policy/clipfrac_avg)."""
    ratio = torch.exp(logps - old_logps)
    adv = advantages[:, None].expand_as(ratio)
    unclipped, clipped = ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv
    n = mask.sum().clamp(min=1)
    loss = -(torch.minimum(unclipped, clipped) * mask).sum() / n
    clipfrac = (((clipped < unclipped) & mask).sum() / n).item()
    return loss, clipfrac


def penalised_rewards(scores: torch.Tensor, logps: torch.Tensor, ref_logps: torch.Tensor, mask: torch.Tensor,
                      kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """InstructGPT's RL reward r(x, y) - beta·log(pi(y|x)/pi_SFT(y|x)) (Ouyang et al. 2022, eq. 2,
    without the pretraining term) per answer, and the log-ratio itself: the sum over the answer's
    sampled tokens of log pi - log pi_SFT, an unbiased estimate of KL(pi || pi_SFT) (TRL's
    objective/kl)."""
    kl = ((logps - ref_logps) * mask).sum(1)
    return scores - kl_coef * kl, kl


def group_advantages(total: torch.Tensor, k: int) -> torch.Tensor:
    """Each answer's reward minus the mean reward of all k answers to its prompt (the answer
    included): a group baseline in place of PPO's value network. Then scaled to unit spread across
    the whole batch, as TRL whitens advantages. GRPO (Shao et al. 2024) subtracts the same group
    mean but divides by each group's own standard deviation; RLOO (Ahmadian et al. 2024) subtracts
    the mean of the other k-1 answers, which equals this difference times k/(k-1)."""
    grouped = total.view(-1, k)
    adv = (grouped - grouped.mean(1, keepdim=True)).flatten()
    return adv / (adv.std() + 1e-6) if adv.std() > 0 else adv


def approx_kl(logps: torch.Tensor, old_logps: torch.Tensor, mask: torch.Tensor) -> float:
    """How far one PPO update moved the policy from the one that sampled the rollout, as TRL logs it
    (policy/approxkl_avg): 0.5 * mean((log pi_new - log pi_old)^2) over the answer tokens, an estimate
    of KL(pi_old || pi_new) that is never negative."""
    return (0.5 * (((logps - old_logps) ** 2) * mask).sum() / mask.sum().clamp(min=1)).item()
