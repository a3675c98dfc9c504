"""SFT speed and quality. `python bench/bench_sft.py [--seeds 0,1] [--steps N] [--threads 1]`

The page's default run (SFTConfig()) on the baked base, one thread as a job gets: held-out
exact-match accuracy per task family at step 0 (the base model in the chat template) and at
the end, the seconds it took, the base corpus's validation loss (forgetting), and the load
average while it ran. Then a check that the teacher-forced accuracy the curve shows is what
greedy generation gives (every held-out prompt answered with model.generate), and the
ceiling for facts: how many held-out facts the base itself completes from the corpus's own
sentence start ("Ben is a friend of " -> "Amy.").
Targets: overall >= 80% within 60 s on 2 cores; the base near 0% on the same prompts.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import sft  # noqa: E402
from engine.core.report import Recorder  # noqa: E402
from engine.core.sampling import generate  # noqa: E402
from engine.text.instructions import FAMILIES  # noqa: E402


def facts_ceiling(cfg, examples) -> float:
    """Share of held-out facts the base completes greedily from the first words of the answer."""
    _, model, tok, _ = sft.load_base(cfg)
    facts = {e.completion for e in examples if e.family == "facts" and e.split == "test"}
    ok = 0
    for a in facts:
        marker = next(m for m in (" is a friend of ", " lives ", " is a ", " has a ", " likes ") if m in a)
        cut = a.index(marker) + len(marker)
        ok += generate(model, tok, "\n" + a[:cut], len(a) - cut, temperature=0) == a[cut:]
    return ok / len(facts)


def row(name: str, r: dict, fams) -> str:
    return f"{name:<22}" + "".join(f"{r.get(f'eval_accuracy/{f}', float('nan')):>10.0%}" for f in fams) + \
        f"{r['eval_accuracy']:>10.0%}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--steps", type=int, default=None, help="default: SFTConfig's")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fams = list(FAMILIES)
    print(f"cores: {os.cpu_count()}, torch threads: {args.threads}")
    print(f"{'':<22}" + "".join(f"{f:>10}" for f in fams) + f"{'overall':>10}")
    for seed in [int(s) for s in args.seeds.split(",")]:
        cfg = sft.SFTConfig(seed=seed, **({"steps": args.steps} if args.steps else {}))
        load0 = os.getloadavg()[0]
        rep, t0, c0 = Recorder(), time.perf_counter(), time.process_time()
        trained = sft.fit(cfg, rep)
        model, tok = trained.model, trained.tokenizer
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        evals = [r for r in rep.records if "eval_accuracy" in r]
        steps = max(r["step"] for r in rep.records if "loss" in r)
        print(row(f"seed {seed} base (step 0)", evals[0], fams))
        print(row(f"seed {seed} tuned", evals[-1], fams))
        print(f"  {steps} steps, training {evals[-1]['elapsed']:.1f} s, whole run {wall:.1f} s wall / {cpu:.1f} s CPU; "
              f"load average {load0:.1f} before, {os.getloadavg()[0]:.1f} after; "
              f"base corpus val loss {evals[0]['base_eval_loss']:.2f} -> {evals[-1]['base_eval_loss']:.2f}"
              + (f"; {trained.loop.message}" if trained.loop.message else ""))
        test = [e for e in sft.default_examples(cfg) if e.split == "test"]
        greedy = sum(sft.answer(model, tok, e.prompt) == e.completion for e in test) / len(test)
        print(f"  greedy generation on all {len(test)} held-out prompts: {greedy:.1%} "
              f"(the curve's teacher-forced figure: {evals[-1]['eval_accuracy']:.1%}); facts ceiling (the base "
              f"completing these held-out facts from their first words): {facts_ceiling(cfg, test):.0%}")


if __name__ == "__main__":
    main()
