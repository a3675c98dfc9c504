"""What every preference trainer shares: the pairs it may use, its loop settings, how good its
answers truly are (the gold reward), the before/after table, and how its policy is saved."""
from __future__ import annotations

import torch

from engine.core.config import UserError
from engine.core.loop import LoopResult, LoopSettings
from engine.core.report import Reporter, StageResult
from engine.core.runs import Trained
from engine.rlhf.config import MIN_PAIRS, RLHFConfig
from engine.rlhf.models import score
from engine.rlhf.preferences import Pair, sample_many, split_pairs, text_of, usable
from engine.sft import answers


def checked(pairs: list[Pair], batch_size: int,
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


def settings(cfg: RLHFConfig, steps: int, lr: float, by_steps: bool = False, **kw) -> LoopSettings:
    """The loop's settings. `by_steps`: the learning-rate schedule follows the steps only, never the
    clock (the loop's default moves it on when the time limit is nearer than the last step), so a
    seeded run gives the same curve however busy the machine: the RLHF page's runs, whose one-click
    experiment must give the recorded run. The time limit still stops it."""
    return LoopSettings(steps=steps, lr=lr, warmup_steps=min(10, steps // 10), eval_every=cfg.eval_every,
                        max_seconds=cfg.max_seconds, bf16=cfg.bf16, time_aware=not by_steps, **kw)


def ended(result: LoopResult, notes: list[str]) -> LoopResult:
    """A diverged run is the person's to fix (a lower learning rate); otherwise the notes become
    the run's message."""
    if result.status == "diverged":
        raise UserError(result.message)
    result.message = "; ".join(notes + ([result.message] if result.message else []))
    return result


@torch.no_grad()
def gold_of_samples(model, tok, prompt_list: list[str], gold, cfg: RLHFConfig, seed: int, per_prompt: int = 8,
                    rm=None) -> dict:
    """Mean gold reward (and reward-model score, when given) of sampled answers to `prompt_list`."""
    g, s = [], []
    for p, (_, ans) in zip(prompt_list, sample_many(model, tok, prompt_list, per_prompt, seed, cfg.temperature,
                                                     cfg.max_new_tokens)):
        texts = [text_of(tok, a) for a in ans]
        g += [gold(p, t) for t in texts]
        if rm is not None:
            s += score(rm, tok, p, texts, cfg.bf16)
    out = {"eval_gold_reward": sum(g) / len(g)}
    if s:
        out["eval_scores"] = sum(s) / len(s)
    return out


def before_after(sft_model, tuned, tok, prompt_list: list[str], rm=None, gold=None, bf16: bool = True) -> list[dict]:
    """The same prompts answered greedily by the SFT model and the tuned policy, each answer with
    the reward model's score and the gold reward when there are."""
    said = {name: answers(m, tok, prompt_list, greedy=True) for name, m in (("SFT", sft_model), ("tuned", tuned))}
    rows = []
    for i, p in enumerate(prompt_list):
        row = {"prompt": p}
        for name in said:
            a = said[name][i]
            row[name] = a
            if rm is not None:
                row[f"{name} reward"] = score(rm, tok, p, [a], bf16)[0]
            if gold is not None:
                row[f"{name} gold"] = gold(p, a)
        rows.append(row)
    return rows


def save_policy(trained: Trained, cfg: RLHFConfig, stage: str = "rlhf", owner: str | None = None) -> StageResult:
    """A tuned policy as a run of `stage` ("rlhf", or "cai" when the labels were AI feedback) whose
    parent is the policy it started from."""
    return trained.save(stage, cfg.to_dict(), name=f"{trained.facts['method']}-{cfg.key()[:6]}",
                        parent=trained.facts["parent"], owner=owner)


def report_before_after(reporter: Reporter, ref, model, tok, prompts: list[str], rm, gold, bf16: bool) -> None:
    model.eval()
    reporter.set_info(before_after=before_after(ref, model, tok, prompts[:8], rm, gold, bf16))
