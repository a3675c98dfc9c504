"""When does the induction head form? Trains the "watch heads form" stage with its defaults, one
thread per run as the job runner does, and prints the step and seconds of the phase change.

Phase change = the first evaluation at which the best head's induction score reaches 0.3 (a
uniform head over 48 tokens scores about 0.03; a perfect induction head 1.0). Also printed: the
first evaluation with the loss on the repeated half below 1 nat (ln V = 3.47 before).

    python bench/bench_induction.py [--seeds 0 1 2] [--steps N] [--init-std S]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine.attention.induction import InductionConfig, fit  # noqa: E402
from engine.core.report import Recorder  # noqa: E402

SCORE, LOSS = 0.3, 1.0


class TimedRecorder(Recorder):
    """Stamps each record with this process's CPU seconds: on a busy machine wall time
    stretches with other people's load; one thread's CPU time is what an idle core would take."""

    def __init__(self):
        super().__init__()
        self.cpu0 = time.process_time()

    def emit(self, record: dict) -> None:
        super().emit({**record, "cpu": time.process_time() - self.cpu0})


def first(records: list[dict], test) -> dict | None:
    return next((r for r in records if "induction_score" in r and test(r)), None)


def when(r: dict | None) -> str:
    return f"step {r['step']}, {r['elapsed']:.1f} s wall, {r['cpu']:.1f} s CPU" if r else "never"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=InductionConfig.steps)
    parser.add_argument("--init-std", type=float, default=InductionConfig.init_std)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"settings: {InductionConfig(steps=args.steps, init_std=args.init_std).to_params()}")
    found = []
    for seed in args.seeds:
        cfg = InductionConfig(seed=seed, steps=args.steps, init_std=args.init_std, max_seconds=300)
        job = TimedRecorder()
        fit(cfg, job)
        score = first(job.records, lambda r: r["induction_score"] >= SCORE)
        loss = first(job.records, lambda r: r["loss_repeat"] < LOSS)
        end = [r for r in job.records if "induction_score" in r][-1]
        ms = statistics.median(r["step_ms"] for r in job.records if "step_ms" in r)
        print(f"seed {seed}: score>={SCORE} at {when(score)}; repeat loss<{LOSS} at {when(loss)}; "
              f"end: step {end['step']}, repeat loss {end['loss_repeat']:.3f}, first half "
              f"{end['loss_first_half']:.3f}, best induction {end['induction_score']:.2f}; "
              f"median step {ms:.1f} ms; {end['elapsed']:.1f} s wall, {end['cpu']:.1f} s CPU", flush=True)
        if score:
            found.append(score)
    if found:
        steps, wall, cpu = (statistics.median(r[k] for r in found) for k in ("step", "elapsed", "cpu"))
        print(f"phase change in {len(found)}/{len(args.seeds)} seeds: median step {steps:.0f}, "
              f"{wall:.1f} s wall, {cpu:.1f} s CPU")


if __name__ == "__main__":
    main()
