"""Direct preference optimisation (Rafailov et al. 2023): the policy learns from the pairs
themselves, against a frozen copy of itself, with no reward model and no sampling."""
from __future__ import annotations

import torch

from engine.core.loop import train
from engine.core.report import Reporter
from engine.core.runs import Trained
from engine.core.sampling import context_length
from engine.rlhf.config import RLHFConfig
from engine.rlhf.losses import dpo_loss
from engine.rlhf.models import collate, encode_answer, load_policy, load_reward_model, pair_batch, token_logps
from engine.rlhf.policy import checked, ended, gold_of_samples, report_before_after, settings
from engine.rlhf.preferences import Pair


def fit_dpo(cfg: RLHFConfig, reporter: Reporter, pairs: list[Pair], parent: str | None = None, gold=None,
            reward: str | None = None, by_steps: bool = False) -> Trained:
    """DPO of the policy run `parent` (None: cfg.parent; empty: the baked SFT run) on `pairs`,
    against a frozen copy of itself as the reference. Uses cfg.steps, lr, batch_size, beta, seed.
    Reports TRL's rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies per step
    and eval_ versions on held-out pairs; with the callable gold(prompt, answer) -> float, also
    eval_gold_reward of sampled answers to held-out prompts. `reward` (a reward run's folder)
    only scores the before/after answers; `by_steps`: see policy.settings."""
    parent = cfg.parent if parent is None else parent
    train_pairs, _, test_pairs, bs, notes = checked(pairs, cfg.batch_size)
    policy_path, model, tok = load_policy(parent)
    _, ref, _ = load_policy(parent)
    ref.requires_grad_(False)
    ctx = context_length(model)
    batch_of = collate(tok)

    def encoded(ps):
        return [(encode_answer(tok, p.prompt, p.chosen, ctx), encode_answer(tok, p.prompt, p.rejected, ctx))
                for p in ps]

    @torch.no_grad()
    def ref_logps(enc):
        out = []
        for i in range(0, len(enc), 64):
            b = pair_batch(batch_of, enc[i:i + 64])
            with torch.autocast("cpu", torch.bfloat16, enabled=cfg.bf16):
                lp = token_logps(ref, b)[0].sum(1)
            k = len(lp) // 2
            out += list(zip(lp[:k].tolist(), lp[k:].tolist()))
        return out

    enc, test_enc = encoded(train_pairs), encoded(test_pairs)
    ref_train, ref_test = ref_logps(enc), ref_logps(test_enc)   # the reference never changes: once
    gen = torch.Generator().manual_seed(cfg.seed)
    held_prompts = list(dict.fromkeys(p.prompt for p in test_pairs))[:12]

    def next_batch(step):
        idx = torch.randperm(len(enc), generator=gen)[:bs].tolist()
        b = pair_batch(batch_of, [enc[i] for i in idx])
        b["ref"] = torch.tensor([ref_train[i] for i in idx])
        return b

    def dpo_metrics(model, b, prefix=""):
        lp = token_logps(model, b)[0].sum(1)
        k = len(lp) // 2
        loss, rc, rr = dpo_loss(lp[:k], lp[k:], b["ref"][:, 0], b["ref"][:, 1], cfg.beta)
        return loss, {f"{prefix}rewards/chosen": rc.mean().item(), f"{prefix}rewards/rejected": rr.mean().item(),
                      f"{prefix}rewards/margins": (rc - rr).mean().item(),
                      f"{prefix}rewards/accuracies": (rc > rr).float().mean().item(),
                      f"{prefix}logps/chosen": lp[:k].mean().item(), f"{prefix}logps/rejected": lp[k:].mean().item()}

    def evaluate(step, final):
        b = pair_batch(batch_of, test_enc)
        b["ref"] = torch.tensor(ref_test)
        loss, m = dpo_metrics(model, b, "eval_")
        m["eval_loss"] = loss.item()
        if gold is not None:
            m.update(gold_of_samples(model, tok, held_prompts, gold, cfg, seed=cfg.seed * 7919 + 1))
        return m

    facts = {"params": model.num_parameters(), "parent": policy_path.name, "method": "dpo",
             "train_pairs": len(train_pairs), "test_pairs": len(test_pairs), "batch_size": bs}
    reporter.set_info(**facts)
    loop = settings(cfg, cfg.steps, cfg.lr, by_steps)
    result = ended(train(model, dpo_metrics, next_batch, loop, reporter, evaluate), notes)
    rm = load_reward_model(reward)[0] if reward else None
    report_before_after(reporter, ref, model, tok, held_prompts, rm, gold, cfg.bf16)
    return Trained(model, tok, result, facts)
