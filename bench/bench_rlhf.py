"""RLHF speed and quality. `python bench/bench_rlhf.py [--seeds 0] [--hack] [--threads 1]`

With the simulated labeler at its default taste (RLHFConfig()): the labels, the reward model's
held-out test accuracy at the step early stopping kept (chosen on a separate validation split;
against the noisy labels and against the gold reward), then PPO and DPO
from the baked SFT run, each with the gold reward of sampled answers to held-out questions
before (step 0: the SFT model) and after, and the seconds each part took on one thread, with
the load average. --hack adds PPO without a KL penalty for longer, printing proxy and gold
reward (Gao, Schulman & Hilton 2022) every 25 steps next to the default KL coefficient.
Targets: reward model >= 85% held-out accuracy; PPO and DPO raise the gold reward clearly;
reward model plus one policy method within 90 s on 2 cores.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.core.report import Recorder  # noqa: E402
from engine.rlhf import preferences, recipe  # noqa: E402
from engine.rlhf.config import RLHFConfig  # noqa: E402
from engine.rlhf.dpo import fit_dpo  # noqa: E402
from engine.rlhf.policy import checked  # noqa: E402
from engine.rlhf.ppo import fit_ppo  # noqa: E402
from engine.rlhf.reward_model import fit_reward_model  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def gold_curve(rec: Recorder) -> list[float]:
    return [r["eval_gold_reward"] for r in rec.records if "eval_gold_reward" in r]


def windows(rec: Recorder, every: int = 25) -> str:
    tr = [r for r in rec.records if "loss" in r]
    lines = []
    for i in range(0, len(tr), every):
        ch = tr[i:i + every]
        mean = {k: sum(r[k] for r in ch) / len(ch) for k in ("objective/scores", "gold_reward", "objective/kl",
                                                               "objective/entropy")}
        lines.append(f"    steps {ch[0]['step']:>3}-{ch[-1]['step']:<3} proxy {mean['objective/scores']:5.2f}  gold "
                     f"{mean['gold_reward']:5.2f}  kl {mean['objective/kl']:5.2f}  entropy {mean['objective/entropy']:4.2f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hack", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"cores: {os.cpu_count()}, torch threads: {args.threads}, load average {os.getloadavg()[0]:.1f}")
    for seed in [int(s) for s in args.seeds.split(",")]:
        cfg = RLHFConfig(seed=seed)
        gold = preferences.gold_fn(cfg.taste)
        pairs, t_lab = timed(lambda: recipe.simulated_pairs(cfg))
        right = sum(gold(p.prompt, p.chosen) > gold(p.prompt, p.rejected) for p in pairs) / len(pairs)
        print(f"seed {seed}, taste {cfg.taste}: {len(pairs)} pairs labelled in {t_lab:.1f} s "
              f"({right:.0%} agree with the gold reward; noise {cfg.noise:.0%})")
        rec = Recorder()
        trained, t_rm = timed(lambda: fit_reward_model(cfg, rec, pairs, gold=gold))
        rm = trained.model
        k = rec.info["kept"]
        test = checked(pairs, cfg.batch_size, validate=True)[2]
        ceiling = sum(gold(p.prompt, p.chosen) > gold(p.prompt, p.rejected) for p in test) / len(test)
        print(f"  reward model: {cfg.rm_steps} steps in {t_rm:.1f} s ({rec.info['train_pairs']} train / "
              f"{rec.info['val_pairs']} validation / {rec.info['test_pairs']} test pairs); kept step {k['kept_step']} "
              f"(validation accuracy {k['val_accuracy']:.1%}): test accuracy {k['eval_accuracy']:.1%} (labels; a "
              f"perfect model would get {ceiling:.1%}, the unflipped share), {k['eval_gold_accuracy']:.1%} (gold)")
        for method in ("ppo", "dpo"):
            rec = Recorder()
            c = cfg.replace(method=method)
            if method == "ppo":
                _, t = timed(lambda: fit_ppo(c, rec, rm, gold=gold))
            else:
                _, t = timed(lambda: fit_dpo(c, rec, pairs, gold=gold))
            g = gold_curve(rec)
            print(f"  {method}: {c.steps} steps in {t:.1f} s; held-out gold reward {g[0]:.2f} (SFT) -> {g[-1]:.2f} "
                  f"({g[-1] - g[0]:+.2f}); reward model + {method}: {t_lab + t_rm + t:.1f} s with labelling")
            print("    greedy answers after: " + " | ".join(r["tuned"] for r in rec.info["before_after"][:5]))
        if args.hack:
            for kl in (0.0, cfg.kl_coef):
                rec = Recorder()
                c = cfg.replace(method="ppo", kl_coef=kl, steps=300, lr=3e-4, max_seconds=300)
                _, t = timed(lambda: fit_ppo(c, rec, rm, gold=gold))
                print(f"  PPO, KL coefficient {kl}, lr {c.lr}, {c.steps} steps ({t:.0f} s):\n{windows(rec)}")
                print("    greedy answers after: " + " | ".join(r["tuned"] for r in rec.info["before_after"]))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
