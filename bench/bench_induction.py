"""When does the induction head form? Trains the "watch heads form" stage with its defaults, one
thread per run as the job runner does, and prints the step and seconds of the phase change.

Phase change = the first evaluation at which the best head's induction score reaches 0.3 (a
uniform head over 48 tokens scores about 0.04; a perfect induction head 1.0). Also printed: the
first evaluation with the loss on the repeated half below 1 nat (ln V = 3.47 before).

    python bench/bench_induction.py [--seeds 0 1 2] [--steps N]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine.induction import InductionConfig, run  # noqa: E402
from engine.jobs import Job  # noqa: E402

SCORE, LOSS = 0.3, 1.0


def first(records: list[dict], test) -> dict | None:
    return next((r for r in records if "induction_score" in r and test(r)), None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=InductionConfig.steps)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"defaults: {InductionConfig(steps=args.steps).to_params()}")
    found = []
    for seed in args.seeds:
        cfg = InductionConfig(seed=seed, steps=args.steps, max_seconds=300)
        job = Job(cfg.key(), None, "bench", "induction", cfg.steps, cfg.max_seconds)
        t0 = time.perf_counter()
        run(cfg, job, save=False)
        wall = time.perf_counter() - t0
        score, loss = first(job.records, lambda r: r["induction_score"] >= SCORE), \
            first(job.records, lambda r: r["loss_repeat"] < LOSS)
        ms = statistics.median(r["step_ms"] for r in job.records if "step_ms" in r)
        end = [r for r in job.records if "induction_score" in r][-1]
        print(f"seed {seed}: score>={SCORE} at " + (f"step {score['step']}, {score['elapsed']:.1f} s" if score else "never")
              + f"; repeat loss<{LOSS} at " + (f"step {loss['step']}, {loss['elapsed']:.1f} s" if loss else "never")
              + f"; end: step {end['step']}, repeat loss {end['loss_repeat']:.3f}, first half "
              f"{end['loss_first_half']:.3f}, best induction {end['induction_score']:.2f}; "
              f"median step {ms:.1f} ms; wall {wall:.1f} s", flush=True)
        if score:
            found.append(score)
    if found:
        print(f"phase change in {len(found)}/{len(args.seeds)} seeds: median step "
              f"{statistics.median(r['step'] for r in found):.0f}, median {statistics.median(r['elapsed'] for r in found):.1f} s")


if __name__ == "__main__":
    main()
