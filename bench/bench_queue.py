"""How big a cluster a room needs: a queueing simulation fed with the measured length of every
page's default run.

    python bench/bench_queue.py [--lengths bench/out/job_lengths.json] [--plot docs/queue.png]

A room of N learners presses Train within the same minute (arrivals spread evenly over 60 s, in a
random order), each on a page drawn in turn from the pages that train, so every page's default run
is in the mix; a job takes its page's measured length (click to finished, from bench/bench_app.py);
the runner serves them first come, first served on C slots (one per CPU: a job is one CPU). Prints
the median and longest wait from click to start, over 200 shuffled rooms, for N = 30 and 100 on
C = 2, 8, 32 and 128, and the smallest C at which the longest wait is at most one job length (the
longest default run). Draws the waits against C for the README. Needs matplotlib for the plot
(`pip install matplotlib`; a benchmark's tool, not the app's).
"""
from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOMS = (30, 100)
CLUSTERS = (2, 8, 32, 128)


def waits(lengths: list[float], learners: int, slots: int, seed: int, window: float = 60.0) -> list[float]:
    """Wait of each learner's job in one simulated room (first come, first served on `slots`)."""
    rng = random.Random(seed)
    arrivals = sorted(rng.uniform(0, window) for _ in range(learners))
    jobs = [lengths[i % len(lengths)] for i in range(learners)]
    rng.shuffle(jobs)
    free = [0.0] * slots            # when each slot is next free
    heapq.heapify(free)
    out = []
    for t, length in zip(arrivals, jobs):
        start = max(t, heapq.heappop(free))
        out.append(start - t)
        heapq.heappush(free, start + length)
    return out


def summary(lengths: list[float], learners: int, slots: int, rooms: int = 200) -> dict:
    medians, longest = [], []
    for seed in range(rooms):
        w = waits(lengths, learners, slots, seed)
        medians.append(statistics.median(w))
        longest.append(max(w))
    return {"median_wait_s": statistics.median(medians), "longest_wait_s": statistics.median(longest),
            "longest_wait_worst_room_s": max(longest)}


def smallest_cluster(lengths: list[float], learners: int) -> int:
    """Fewest slots whose longest wait (median over rooms) is at most one job length."""
    limit = max(lengths)
    slots = 1
    while summary(lengths, learners, slots, rooms=50)["longest_wait_s"] > limit:
        slots += 1
    return slots


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lengths", default=str(ROOT / "bench" / "out" / "job_lengths.json"),
                    help='{"page": seconds, ...}: each page\'s default run, click to finished')
    ap.add_argument("--plot", default=str(ROOT / "docs" / "queue.png"))
    args = ap.parse_args()
    measured = json.loads(Path(args.lengths).read_text())
    lengths = list(measured.values())
    print("job lengths (s): " + ", ".join(f"{k} {v:.0f}" for k, v in measured.items()))
    rows = []
    for n in ROOMS:
        for c in CLUSTERS:
            s = summary(lengths, n, c)
            rows.append({"learners": n, "cpus": c, **s})
            print(f"{n:>4} learners, {c:>3} CPUs: median wait {s['median_wait_s']:6.1f} s, longest "
                  f"{s['longest_wait_s']:6.1f} s (worst of 200 rooms {s['longest_wait_worst_room_s']:.1f} s)")
        print(f"{n:>4} learners: {smallest_cluster(lengths, n)} CPUs keep the longest wait within one job "
              f"length ({max(lengths):.0f} s)")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    cpus = range(1, 129)
    for n, color in zip(ROOMS, ("#1f77b4", "#d62728")):
        s = [summary(lengths, n, c, rooms=40) for c in cpus]
        ax.plot(cpus, [x["longest_wait_s"] for x in s], color=color, label=f"{n} learners: longest wait")
        ax.plot(cpus, [x["median_wait_s"] for x in s], color=color, ls="--", label=f"{n} learners: median wait")
    ax.axhline(max(lengths), color="gray", ls=":", label=f"one job length ({max(lengths):.0f} s)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("CPUs in the cluster (one job each)")
    ax.set_ylabel("wait from Train to start (s)")
    ax.set_title("A room pressing Train within one minute")
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.plot, dpi=110)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
