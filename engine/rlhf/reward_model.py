"""InstructGPT's step 2: a reward model learned from preference pairs with the Bradley–Terry loss
(Ouyang et al. 2022, eq. 1), with early stopping on a validation split."""
from __future__ import annotations

from pathlib import Path

import torch

from engine.core.loop import train
from engine.core.report import Reporter, StageResult
from engine.core.runs import Trained
from engine.core.sampling import context_length
from engine.rlhf.config import RLHFConfig
from engine.rlhf.losses import bradley_terry_loss
from engine.rlhf.models import collate, encode_answer, load_policy, pair_batch, reward_model_from, rewards, score
from engine.rlhf.policy import checked, ended, settings
from engine.rlhf.preferences import Pair, pairs_to_jsonl, usable


def fit_reward_model(cfg: RLHFConfig, reporter: Reporter, pairs: list[Pair], parent: str | None = None,
                     gold=None, by_steps: bool = False) -> Trained:
    """Train a reward model on `pairs` with the Bradley–Terry loss: a transformers
    sequence-classification model with one output, started from the policy run `parent`
    (None: cfg.parent; empty: the baked SFT run). Uses cfg.rm_steps, rm_lr, batch_size, seed.
    Reports loss and `accuracy` (share of pairs ranked right) per step; at each evaluation
    `val_loss`/`val_accuracy` on a validation fifth of the training prompts and held-out test
    `eval_loss`/`eval_accuracy` (plus `eval_gold_accuracy`, against the callable
    gold(prompt, answer) -> float when given). Keeps the weights of the evaluation with the best
    val_accuracy (info["kept"]: its step and metrics; the test metrics are never used to choose).
    `by_steps`: see policy.settings."""
    parent = cfg.parent if parent is None else parent
    fit_pairs, val_pairs, test_pairs, bs, notes = checked(pairs, cfg.batch_size, validate=True)
    policy_path, _, tok = load_policy(parent)
    model = reward_model_from(policy_path, cfg.seed)
    ctx = context_length(model)

    def encoded(ps):
        return [(encode_answer(tok, p.prompt, p.chosen, ctx), encode_answer(tok, p.prompt, p.rejected, ctx)) for p in ps]

    enc, val_enc, test_enc = encoded(fit_pairs), encoded(val_pairs), encoded(test_pairs)
    batch_of = collate(tok)
    gen = torch.Generator().manual_seed(cfg.seed)
    best: dict = {}

    def next_batch(step):
        idx = torch.randperm(len(enc), generator=gen)[:bs].tolist()
        return pair_batch(batch_of, [enc[i] for i in idx])

    def loss_fn(model, batch):
        r = rewards(model, batch)
        rc, rr = r[:len(r) // 2], r[len(r) // 2:]
        return bradley_terry_loss(rc, rr), {"accuracy": (rc > rr).float().mean().item(),
                                            "margin": (rc - rr).mean().item()}

    def pair_rewards(encs) -> tuple[torch.Tensor, torch.Tensor]:
        rc, rr = [], []
        for i in range(0, len(encs), 64):
            r = rewards(model, pair_batch(batch_of, encs[i:i + 64]))
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
    reporter.set_info(**facts)
    result = train(model, loss_fn, next_batch, settings(cfg, cfg.rm_steps, cfg.rm_lr, by_steps), reporter, evaluate)
    if best and best["step"] != result.steps:
        model.load_state_dict(best["state"])
        notes.append(f"kept the weights of step {best['step']}, the best validation accuracy "
                     f"({best['metrics']['val_accuracy']:.0%})")
    ended(result, notes)
    kept = {"kept_step": best.get("step", result.steps), **best.get("metrics", {})}
    model.eval()
    reporter.set_info(kept=kept, examples=reward_examples(model, tok, test_pairs, gold, bf16=cfg.bf16))
    return Trained(model, tok, result, {**facts, **kept})


def save_reward_model(trained: Trained, cfg: RLHFConfig, pairs: list[Pair], owner: str | None = None) -> StageResult:
    """A run of stage "reward" (parent = the policy whose answers it judged), with the usable pairs
    it learned from in preferences.jsonl (TRL's format), so the labels can be read and reused."""
    out = trained.save("reward", cfg.to_dict(), name=f"rm-{cfg.key()[:6]}", parent=trained.facts["parent"],
                       owner=owner)
    (Path(out.run) / "preferences.jsonl").write_text(pairs_to_jsonl(usable(pairs)[0]))
    return out


def reward_examples(rm, tok, pairs: list[Pair], gold=None, n: int = 8, bf16: bool = True) -> list[dict]:
    """Rewards of the answers in held-out pairs, chosen and rejected: the first pair of each of the
    first n questions (a question's pairs come together, and one question n times says little)."""
    firsts: dict[str, Pair] = {}
    for p in pairs:
        firsts.setdefault(p.prompt, p)
    rows = []
    for p in list(firsts.values())[:n]:
        rc, rr = score(rm, tok, p.prompt, [p.chosen, p.rejected], bf16)
        rows.append({"prompt": p.prompt, "chosen": p.chosen, "reward (chosen)": rc, "rejected": p.rejected,
                     "reward (rejected)": rr, **({"gold (chosen)": gold(p.prompt, p.chosen),
                                                  "gold (rejected)": gold(p.prompt, p.rejected)} if gold else {})})
    return rows


