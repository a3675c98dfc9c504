"""RLHF: a reward model learned from preferences, and a policy pulled toward it.

InstructGPT's recipe at toy scale (Ouyang et al. 2022): after SFT, (2) train a reward model on
pairs of answers people compared, with the Bradley–Terry loss, and (3) optimise the SFT policy
against it with PPO, with a KL penalty that keeps it near the SFT model. DPO (Rafailov et al.
2023) skips the reward model and trains the policy on the pairs directly. All three go
through the engine's one loop; they differ in batches and loss.

PPO here is PPO's clipped objective (Schulman et al. 2017, eq. 7) with several updates per
rollout, but no learned value function: each answer's advantage is its reward minus the mean
reward of the other answers to the same prompt, as in GRPO (Shao et al. 2024) and RLOO
(Ahmadian et al. 2024), which dropped the critic for language models.
"""
from __future__ import annotations

import dataclasses
import os
import random

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorForSeq2Seq

from . import limits, runs
from .config import StageConfig, UserError, field
from .instructions import Example
from .loop import LoopSettings, train
from .models import GLOBAL_RNG as model_lock
from .preferences import (TASTES, Pair, gold_fn, pairs_to_jsonl, prompts as world_prompts, sample, simulate,
                          split_pairs, split_prompts, text_of, usable)
from .sampling import context_length
from .sft import answer, encode

SOURCES = ("simulated", "human", "upload")
METHODS = ("ppo", "dpo")
MIN_PAIRS = 8   # fewer cannot give both a training and a held-out set


@dataclasses.dataclass
class RLHFConfig(StageConfig):
    PRESETS = {"quick demo": dict(n_pairs=300, rm_steps=80, steps=60, eval_every=15, max_seconds=30),
               "standard": dict(n_pairs=600, rm_steps=150, steps=120, eval_every=20, max_seconds=90),
               "thorough": dict(n_pairs=1200, rm_steps=300, steps=300, eval_every=25, max_seconds=240)}
    PRESET_NOTES = {"quick demo": "300 comparisons, short runs: each part in under 30 s",
                    "standard": "600 comparisons; reward model and one policy method in about a minute",
                    "thorough": "1200 comparisons and longer runs"}
    parent: str = field("", "folder name of the SFT run to start from (empty: the baked SFT run)")
    source: str = field("simulated", "where the preference pairs come from", choices=SOURCES)
    taste: str = field("animal", "the simulated labeler's hidden taste", choices=tuple(TASTES))
    noise: float = field(0.05, "share of comparisons the simulated labeler gets the wrong way round", range=(0.0, 0.5))
    n_pairs: int = field(600, "comparisons the simulated labeler makes (ties not counted)", range=(1, 5000))
    rm_steps: int = field(150, "reward-model training steps", range=(1, 100_000))
    rm_lr: float = field(1e-3, "reward-model peak learning rate", range=(1e-6, 1.0))
    method: str = field("dpo", "policy optimisation: PPO against the reward model, or DPO on the pairs",
                        choices=METHODS)
    steps: int = field(120, "policy training steps", range=(1, 100_000))
    lr: float = field(1e-4, "policy peak learning rate", range=(1e-7, 10.0))
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
    eval_every: int = field(20, "steps between evaluations", range=(1, 100_000))
    max_seconds: int = field(90, "time limit in seconds", range=(1, limits.MAX_JOB_SECONDS))
    seed: int = field(0, "random seed: same seed and data give the same curves")
    bf16: bool = field(True, "bfloat16 autocast")


# --- the losses, as published -----------------------------------------------------------------

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
    """Each answer's reward minus the mean of its prompt's k answers, GRPO's baseline in place of a
    value network (Shao et al. 2024; RLOO's leave-one-out mean gives the same up to a factor
    k/(k-1)), then scaled to unit spread across the batch (TRL whitens advantages too)."""
    grouped = total.view(-1, k)
    adv = (grouped - grouped.mean(1, keepdim=True)).flatten()
    return adv / (adv.std() + 1e-6) if adv.std() > 0 else adv


# --- models and batches ----------------------------------------------------------------------------

def parent_path(parent: str):
    """The policy run to start from: a run by folder name, or the baked SFT run."""
    return runs.find_run(parent, None) if parent else runs.find_run("", "sft")


def load_policy(parent: str):
    path = parent_path(parent)
    with model_lock:
        model, tok, info = runs.load_run(path)
    if info.objective != "clm" or tok.chat_template is None:
        raise UserError(f"{path.name} is not a chat model: RLHF starts from an SFT run. Pick one.")
    return path, model, tok


def load_reward_model(path):
    """A reward run: transformers' sequence classifier with one output."""
    with model_lock:
        model = AutoModelForSequenceClassification.from_pretrained(path, attn_implementation="eager",
                                                                   dtype=torch.float32)
    model.eval()
    return model, AutoTokenizer.from_pretrained(path)


def reward_model_from(policy_path, seed: int):
    """The SFT model's body with a fresh one-output head (InstructGPT starts its reward model
    from the SFT model with the unembedding replaced by a scalar head: Ouyang et al. 2022, 3.5)."""
    with model_lock:
        torch.manual_seed(seed)   # the new head's initial weights
        model = AutoModelForSequenceClassification.from_pretrained(
            policy_path, num_labels=1, attn_implementation="eager", dtype=torch.float32)
    model.config.pad_token_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    return model


def find_reward(name: str, parent_name: str, owner: str | None, also=()):
    """A reward run by name, or the newest one of this owner's (or named in `also`, as
    runs.list_runs) trained on `parent_name`'s answers."""
    if name:
        return runs.find_run(name, "reward")
    for info in runs.list_runs("reward", owner=owner, also=also):
        if info.parent == parent_name:
            return info.path
    raise UserError("PPO needs a reward model: train one in step 2 first (or pick DPO, which needs none).")


def _encode(tok, prompt: str, answer_text: str, ctx: int) -> dict:
    return encode(tok, Example("rlhf", prompt, answer_text), mask_prompt=True, max_len=ctx)[0]


def _collate(tok):
    return DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100, return_tensors="pt")


def token_logps(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each labelled token (zero elsewhere) and the mask of labelled tokens."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    labels = batch["labels"][:, 1:]
    mask = labels != -100
    lp = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return lp * mask, mask


def pair_batch(collate, encoded: list[tuple[dict, dict]]) -> dict:
    """Chosen rows first, then rejected rows, padded together."""
    return dict(collate([c for c, _ in encoded] + [r for _, r in encoded]))


def rewards(rm, batch: dict) -> torch.Tensor:
    return rm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0].float()


@torch.no_grad()
def score(rm, tok, prompt: str, answers: list[str], bf16: bool = True) -> list[float]:
    """The reward model's score of each answer to `prompt`."""
    ctx = context_length(rm)
    b = dict(_collate(tok)([_encode(tok, prompt, a, ctx) for a in answers]))
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        return rewards(rm, b).tolist()


def _checked(pairs: list[Pair], batch_size: int,
             validate: bool = False) -> tuple[list[Pair], list[Pair], list[Pair], int, list[str]]:
    """Usable pairs split for training, validation (with `validate`: a fifth of the training
    prompts, to choose when to stop) and testing, the batch size that fits, and notes."""
    keep, problems = usable(pairs)
    notes = [f"{len(problems)} pairs left out ({problems[0]}{', ...' if len(problems) > 1 else ''})"] if problems else []
    if len(keep) < MIN_PAIRS:
        raise UserError(f"There are {len(keep)} usable preference pairs; at least {MIN_PAIRS} are needed (some to "
                        "train on, some held out to test). Label or upload more pairs, or use the simulated labeler."
                        + (f" Left out: {'; '.join(problems[:3])}." if problems else ""))
    train_pairs, test_pairs = split_pairs(keep)
    train_pairs, val_pairs = split_pairs(train_pairs) if validate else (train_pairs, [])
    if len(train_pairs) < batch_size:
        notes.append(f"only {len(train_pairs)} training pairs, fewer than a batch of {batch_size}: each step "
                     f"uses all {len(train_pairs)}")
        batch_size = len(train_pairs)
    return train_pairs, val_pairs, test_pairs, batch_size, notes


def _settings(cfg: RLHFConfig, steps: int, lr: float, **kw) -> LoopSettings:
    return LoopSettings(steps=steps, lr=lr, warmup_steps=min(10, steps // 10), eval_every=cfg.eval_every,
                        max_seconds=cfg.max_seconds, bf16=cfg.bf16, **kw)


def _finish_note(job, result, notes: list[str]) -> None:
    if result.status == "diverged":
        raise UserError(result.message)
    if result.message:
        notes.append(result.message)
    if hasattr(job, "message"):
        job.message = "; ".join(notes)


def _info(job, facts: dict) -> None:
    if hasattr(job, "info"):
        job.info.update(facts)


# --- preferences for a config ----------------------------------------------------------------------

_SIMULATED: dict[str, tuple[list[Pair], dict]] = {}


def simulated_pairs(cfg: RLHFConfig, job=None) -> list[Pair]:
    """The simulated labeler's pairs on the parent's own answers, made once per setting (the
    reward-model and DPO jobs of one config share them)."""
    key = repr((cfg.parent, cfg.taste, cfg.noise, cfg.n_pairs, cfg.temperature, cfg.max_new_tokens, cfg.seed))
    if key not in _SIMULATED:
        _, model, tok = load_policy(cfg.parent)
        stop = getattr(job, "should_stop", lambda: False)
        pairs, stats = simulate(model, tok, world_prompts(), cfg.taste, cfg.noise, cfg.n_pairs, cfg.seed,
                                cfg.temperature, max_new_tokens=cfg.max_new_tokens, stop=stop)
        if stop():
            return pairs
        _SIMULATED[key] = pairs, dataclasses.asdict(stats)
        while len(_SIMULATED) > 8:
            _SIMULATED.pop(next(iter(_SIMULATED)))
    pairs, stats = _SIMULATED[key]
    _info(job, {"labels": {**stats, "kept": len(pairs), "taste": cfg.taste}})
    return list(pairs)


def pairs_for(cfg: RLHFConfig, job, pairs: list[Pair] | None) -> list[Pair]:
    return simulated_pairs(cfg, job) if pairs is None else pairs


# --- step 2: the reward model ---------------------------------------------------------------------

def train_reward_model(cfg: RLHFConfig, job, pairs: list[Pair], parent: str | None = None, owner: str | None = None,
                       save: bool = True, gold=None):
    """Train a reward model on `pairs` with the Bradley–Terry loss: a transformers
    sequence-classification model with one output, started from the policy run `parent`
    (None: cfg.parent; empty: the baked SFT run). Uses cfg.rm_steps, rm_lr, batch_size, seed.
    Reports loss and `accuracy` (share of pairs ranked right) per step; at each evaluation
    `val_loss`/`val_accuracy` on a validation fifth of the training prompts and held-out test
    `eval_loss`/`eval_accuracy` (plus `eval_gold_accuracy`, against the callable
    gold(prompt, answer) -> float when given). Keeps the weights of the evaluation with the best
    val_accuracy (job.info["kept"]: its step and metrics; the test metrics are never used to
    choose). Saves a run of stage "reward" (parent = the policy
    run) with the pairs in preferences.jsonl and returns its folder; with save=False returns (model, tok)."""
    parent = cfg.parent if parent is None else parent
    fit_pairs, val_pairs, test_pairs, bs, notes = _checked(pairs, cfg.batch_size, validate=True)
    policy_path, _, tok = load_policy(parent)
    model = reward_model_from(policy_path, cfg.seed)
    ctx = context_length(model)

    def encoded(ps):
        return [(_encode(tok, p.prompt, p.chosen, ctx), _encode(tok, p.prompt, p.rejected, ctx)) for p in ps]

    enc, val_enc, test_enc = encoded(fit_pairs), encoded(val_pairs), encoded(test_pairs)
    collate = _collate(tok)
    gen = torch.Generator().manual_seed(cfg.seed)
    best: dict = {}

    def next_batch(step):
        idx = torch.randperm(len(enc), generator=gen)[:bs].tolist()
        return pair_batch(collate, [enc[i] for i in idx])

    def loss_fn(model, batch):
        r = rewards(model, batch)
        rc, rr = r[:len(r) // 2], r[len(r) // 2:]
        return bradley_terry_loss(rc, rr), {"accuracy": (rc > rr).float().mean().item(),
                                            "margin": (rc - rr).mean().item()}

    def pair_rewards(encs) -> tuple[torch.Tensor, torch.Tensor]:
        rc, rr = [], []
        for i in range(0, len(encs), 64):
            r = rewards(model, pair_batch(collate, encs[i:i + 64]))
            rc.append(r[:len(r) // 2]), rr.append(r[len(r) // 2:])
        return torch.cat(rc), torch.cat(rr)

    def evaluate(step, final):
        vc, vr = pair_rewards(val_enc)
        rc, rr = pair_rewards(test_enc)
        m = {"val_loss": bradley_terry_loss(vc, vr).item(), "val_accuracy": (vc > vr).float().mean().item(),
             "eval_loss": bradley_terry_loss(rc, rr).item(), "eval_accuracy": (rc > rr).float().mean().item()}
        if gold is not None:
            agree = [(a > b) == (gold(p.prompt, p.chosen) > gold(p.prompt, p.rejected))
                     for p, a, b in zip(test_pairs, rc.tolist(), rr.tolist())]
            m["eval_gold_accuracy"] = sum(agree) / len(agree)
        # Early stopping: keep the weights of the evaluation with the best validation accuracy
        # (then the lowest validation loss). Noisy labels are memorised after an epoch or two,
        # as InstructGPT found (Ouyang et al. 2022, 3.5: one epoch, since more overfits).
        if step > 0 and (m["val_accuracy"], -m["val_loss"]) > best.get("key", (-1.0, 0.0)):
            best.update(key=(m["val_accuracy"], -m["val_loss"]), step=step, metrics=m,
                        state={k: v.detach().clone() for k, v in model.state_dict().items()})
        return m

    facts = {"params": model.num_parameters(), "parent": policy_path.name, "train_pairs": len(fit_pairs),
             "val_pairs": len(val_pairs), "test_pairs": len(test_pairs), "batch_size": bs}
    _info(job, facts)
    result = train(model, loss_fn, next_batch, _settings(cfg, cfg.rm_steps, cfg.rm_lr), job, evaluate)
    if best and best["step"] != result.steps:
        model.load_state_dict(best["state"])
        notes.append(f"kept the weights of step {best['step']}, the best validation accuracy "
                     f"({best['metrics']['val_accuracy']:.0%})")
    _finish_note(job, result, notes)
    kept = {"kept_step": best.get("step", result.steps), **best.get("metrics", {})}
    _info(job, {"kept": kept})
    model.eval()
    examples = reward_examples(model, tok, test_pairs, gold, bf16=cfg.bf16)
    _info(job, {"examples": examples})
    if not save:
        return model, tok
    records = list(getattr(job, "records", []))
    summary = {**facts, "status": result.status, "steps": result.steps, "seconds": round(result.seconds, 1), **kept}
    path = runs.save_run(model, tok, "reward", cfg.to_dict(), records, summary, name=f"rm-{cfg.key()[:6]}",
                         parent=policy_path.name, owner=owner)
    (path / "preferences.jsonl").write_text(pairs_to_jsonl(fit_pairs + val_pairs + test_pairs))
    return str(path)


def reward_examples(rm, tok, pairs: list[Pair], gold=None, n: int = 8, bf16: bool = True) -> list[dict]:
    """Rewards of the answers in the first n held-out pairs, chosen and rejected."""
    rows = []
    for p in pairs[:n]:
        rc, rr = score(rm, tok, p.prompt, [p.chosen, p.rejected], bf16)
        rows.append({"prompt": p.prompt, "chosen": p.chosen, "reward (chosen)": rc, "rejected": p.rejected,
                     "reward (rejected)": rr, **({"gold (chosen)": gold(p.prompt, p.chosen),
                                                  "gold (rejected)": gold(p.prompt, p.rejected)} if gold else {})})
    return rows


# --- step 3: the policy -----------------------------------------------------------------------------

@torch.no_grad()
def gold_of_samples(model, tok, prompt_list: list[str], gold, cfg: RLHFConfig, seed: int, per_prompt: int = 8,
                    rm=None) -> dict:
    """Mean gold reward (and reward-model score, when given) of sampled answers to `prompt_list`."""
    g, s = [], []
    for i, p in enumerate(prompt_list):
        _, ans = sample(model, tok, p, per_prompt, seed + i, cfg.temperature, cfg.max_new_tokens)
        texts = [text_of(tok, a) for a in ans]
        g += [gold(p, t) for t in texts]
        if rm is not None:
            s += score(rm, tok, p, texts, cfg.bf16)
    out = {"eval_gold_reward": sum(g) / len(g)}
    if s:
        out["eval_scores"] = sum(s) / len(s)
    return out


def train_dpo(cfg: RLHFConfig, job, pairs: list[Pair], parent: str | None = None, owner: str | None = None,
              save: bool = True, gold=None, reward: str | None = None, stage: str = "rlhf"):
    """Direct preference optimisation of the policy run `parent` (None: cfg.parent; empty: the
    baked SFT run) on `pairs`, against a frozen copy of itself as the reference. Uses cfg.steps,
    lr, batch_size, beta, seed. Reports TRL's rewards/chosen, rewards/rejected, rewards/margins,
    rewards/accuracies per step and eval_ versions on held-out pairs; with the callable
    gold(prompt, answer) -> float, also eval_gold_reward of sampled answers to held-out prompts.
    `reward` (a reward run's folder) only scores the before/after answers. Saves a run of `stage`
    (parent = the policy run; "cai" when the pairs are AI feedback) and returns its folder; with
    save=False returns (model, tok)."""
    parent = cfg.parent if parent is None else parent
    train_pairs, _, test_pairs, bs, notes = _checked(pairs, cfg.batch_size)
    policy_path, model, tok = load_policy(parent)
    _, ref, _ = load_policy(parent)
    ref.requires_grad_(False)
    ctx = context_length(model)
    collate = _collate(tok)

    def encoded(ps):
        return [(_encode(tok, p.prompt, p.chosen, ctx), _encode(tok, p.prompt, p.rejected, ctx)) for p in ps]

    @torch.no_grad()
    def ref_logps(enc):
        out = []
        for i in range(0, len(enc), 64):
            b = pair_batch(collate, enc[i:i + 64])
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
        b = pair_batch(collate, [enc[i] for i in idx])
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
        b = pair_batch(collate, test_enc)
        b["ref"] = torch.tensor(ref_test)
        loss, m = dpo_metrics(model, b, "eval_")
        m["eval_loss"] = loss.item()
        if gold is not None:
            m.update(gold_of_samples(model, tok, held_prompts, gold, cfg, seed=cfg.seed * 7919 + 1))
        return m

    facts = {"params": model.num_parameters(), "parent": policy_path.name, "method": "dpo",
             "train_pairs": len(train_pairs), "test_pairs": len(test_pairs), "batch_size": bs}
    _info(job, facts)
    result = train(model, dpo_metrics, next_batch, _settings(cfg, cfg.steps, cfg.lr), job, evaluate)
    _finish_note(job, result, notes)
    return _save_policy(cfg, job, model, tok, ref, policy_path, held_prompts, gold, reward, facts, result, owner,
                        save, stage)


def train_ppo(cfg: RLHFConfig, job, reward, prompt_list: list[str] | None = None, parent: str | None = None,
              owner: str | None = None, save: bool = True, gold=None, stage: str = "rlhf"):
    """PPO's clipped objective against a reward model, with InstructGPT's KL penalty: each answer's
    reward is r(x, y) - kl_coef·log(pi(y|x)/pi_SFT(y|x)) (Ouyang et al. 2022, eq. 2, without the
    pretraining term). `reward` is a reward run's folder (or a loaded sequence classifier); the
    policy starts from `parent` (None: cfg.parent; empty: the baked SFT run). Every cfg.ppo_epochs
    steps, next_batch samples cfg.samples_per_prompt answers to each of cfg.prompts_per_step prompts
    (default prompts: the world's questions, every fifth held out for evaluation) and scores them;
    each step is one clipped update on that rollout. Reports TRL's objective/scores,
    objective/rlhf_reward, objective/kl, objective/entropy and policy/clipfrac_avg, and gold_reward
    (the callable gold(prompt, answer) -> float, on the same answers) when given."""
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
    collate = _collate(tok)
    rng = random.Random(cfg.seed)
    P, K = cfg.prompts_per_step, cfg.samples_per_prompt
    rollout: dict = {}

    @torch.no_grad()
    def make_rollout(step):
        rows, texts, prompts_used = [], [], []
        for i in range(P):
            prompt = rng.choice(train_prompts)
            p_ids, answers = sample(model, tok, prompt, K, cfg.seed * 1_000_003 + step * 101 + i, cfg.temperature,
                                    cfg.max_new_tokens)
            for a in answers:
                rows.append({"input_ids": p_ids + a, "labels": [-100] * len(p_ids) + a})
                texts.append(text_of(tok, a))
                prompts_used.append(prompt)
        b = dict(collate(rows))
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
                      "policy/approxkl_avg": (((b["old_logps"] - lp) * mask).sum() / mask.sum()).item()}

    def evaluate(step, final):
        return gold_of_samples(model, tok, held_prompts, gold, cfg, seed=cfg.seed * 7919 + 1, rm=rm) \
            if gold is not None else {}

    def after_eval(step, final):
        if hasattr(job, "add_sample") and rollout:
            job.add_sample({"step": step, "answers": rollout["texts"]})

    facts = {"params": model.num_parameters(), "parent": policy_path.name, "method": "ppo",
             "reward_model": os.path.basename(str(reward).rstrip("/")) if named else "given"}
    _info(job, facts)
    result = train(model, loss_fn, next_batch, _settings(cfg, cfg.steps, cfg.lr, diverge_ratio=0), job, evaluate,
                   after_eval=after_eval)
    notes = []
    _finish_note(job, result, notes)
    return _save_policy(cfg, job, model, tok, ref, policy_path, held_prompts, gold, rm, facts, result, owner, save, stage)


def _save_policy(cfg, job, model, tok, ref, policy_path, prompt_list, gold, rm, facts, result, owner, save, stage):
    model.eval()
    if isinstance(rm, str) and rm:
        rm = load_reward_model(rm)[0]
    _info(job, {"before_after": before_after(ref, model, tok, prompt_list[:8], rm or None, gold, cfg.bf16)})
    if not save:
        return model, tok
    records = list(getattr(job, "records", []))
    last = next((r for r in reversed(records) if any(k.startswith("eval_") for k in r)), {})
    summary = {**facts, "status": result.status, "steps": result.steps, "seconds": round(result.seconds, 1),
               **{k: v for k, v in last.items() if k.startswith("eval_")}}
    return str(runs.save_run(model, tok, stage, cfg.to_dict(), records, summary,
                             name=f"{facts['method']}-{cfg.key()[:6]}", parent=policy_path.name, owner=owner))


def before_after(sft_model, tuned, tok, prompt_list: list[str], rm=None, gold=None, bf16: bool = True) -> list[dict]:
    """The same prompts answered greedily by the SFT model and the tuned policy, each answer with
    the reward model's score and the gold reward when there are."""
    rows = []
    for p in prompt_list:
        row = {"prompt": p}
        for name, m in (("SFT", sft_model), ("tuned", tuned)):
            a = answer(m, tok, p, greedy=True)
            row[name] = a
            if rm is not None:
                row[f"{name} reward"] = score(rm, tok, p, [a], bf16)[0]
            if gold is not None:
                row[f"{name} gold"] = gold(p, a)
        rows.append(row)
    return rows


def page_gold(cfg: RLHFConfig):
    """The simulated labeler's gold reward; people and files have no formula to check against."""
    return gold_fn(cfg.taste) if cfg.source == "simulated" else None


def run_reward(cfg: RLHFConfig, job, pairs: list[Pair] | None = None, owner: str | None = None) -> str:
    """The page's step 2: pairs (None: the simulated labeler's) -> a saved reward run."""
    pairs = pairs_for(cfg, job, pairs)
    return train_reward_model(cfg, job, pairs, owner=owner, gold=page_gold(cfg))


def run_policy(cfg: RLHFConfig, job, pairs: list[Pair] | None = None, owner: str | None = None) -> str:
    """The page's step 3: PPO against the newest reward model for the parent (or cfg.reward), or
    DPO on the pairs (None: the simulated labeler's)."""
    gold = page_gold(cfg)
    parent_name = parent_path(cfg.parent).name
    if cfg.method == "ppo":
        return train_ppo(cfg, job, str(find_reward(cfg.reward, parent_name, owner)), owner=owner, gold=gold)
    reward = None
    try:
        reward = str(find_reward(cfg.reward, parent_name, owner))
    except UserError:
        pass   # DPO needs no reward model; without one the before/after table shows gold scores only
    return train_dpo(cfg, job, pairs_for(cfg, job, pairs), owner=owner, gold=gold, reward=reward)
