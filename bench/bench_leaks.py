"""Do jobs leak? Start and stop many jobs and watch threads, memory and the runner's bookkeeping.

    python bench/bench_leaks.py             # engine: 100 cycles through JobRunner
    python bench/bench_leaks.py --app 20    # and 20 visitor cycles against `streamlit run app.py`

Engine: each cycle submits a real Pretraining job (50k model, char tokenizer, energy measured
as in the app, saved to a temporary run store); odd cycles are stopped mid-run, even ones
finish. Every 10 cycles: threading.active_count(), RSS after gc.collect(), jobs kept by the
runner, runs on disk. App: each cycle a visitor opens the Pretraining page, presses Train,
and closes the tab (every other one mid-run); the server's OS threads and RSS are read from
/proc after each cycle.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LLMX_RUNS_DIR", tempfile.mkdtemp(prefix="llmx-leaks-runs-"))
os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")

from engine import pretraining as pretrain
from engine.core import limits  # noqa: E402
from engine.core.jobs import JobRunner  # noqa: E402
from engine.core.report import Task  # noqa: E402
from engine.pretraining import PretrainConfig  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cycle(runner: JobRunner, i: int, stop_midway: bool) -> str:
    cfg = PretrainConfig(size="50k", steps=60, eval_every=20, sample_every=60, warmup=5, seed=i, max_seconds=20)
    job = runner.submit(key=cfg.key(), task=Task(pretrain.run, cfg, {"owner": "leaks"}), owner="leaks",
                        label="leak", total_steps=cfg.steps, max_seconds=cfg.max_seconds)
    if stop_midway:
        while job.status == "queued" or (job.active and not job.records):
            time.sleep(0.01)
        job.stop()
    while job.active:
        time.sleep(0.01)
    return job.status


def engine_cycles(n: int) -> list[dict]:
    runner = JobRunner()
    for i in range(3):                           # warm-up: first-use costs (codecarbon, torch) are not leaks
        cycle(runner, 10_000 + i, False)
    rows = []
    statuses = []
    for i in range(n + 1):
        if i % 10 == 0:
            gc.collect()
            rows.append({"cycle": i, "threads": threading.active_count(), "rss_mb": round(rss_mb()),
                         "jobs_kept": len(runner.jobs),
                         "runs_on_disk": len(list(Path(os.environ["LLMX_RUNS_DIR"]).glob("*/run.json")))})
            print(rows[-1], flush=True)
        if i < n:
            statuses.append(cycle(runner, i, stop_midway=bool(i % 2)))
    print({s: statuses.count(s) for s in set(statuses)})
    return rows


def app_cycles(n: int) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from visitors import PARAMS, Server, Visitor

    server = Server()
    rows = []

    async def one(i: int) -> str:
        v = Visitor(f"c{i}", f"{PARAMS}&seed={i}")
        await v.open(server.ws_url)
        await v.click("Train")
        await v.wait_for(("running",) if i % 2 else ("done",), 60)
        await v.close()                          # closing the tab mid-run must stop the job
        return v.state

    try:
        asyncio.run(one(10_000))                 # warm-up
        time.sleep(3)
        for i in range(n + 1):
            if i % 5 == 0:
                time.sleep(3)                    # the server notices closed tabs and ends their jobs
                s = server.status()
                rows.append({"cycle": i, "threads": s["Threads"], "rss_mb": s["VmRSS"],
                             "runs_on_disk": len(list(server.runs.glob("*/run.json")))})
                print(rows[-1], flush=True)
            if i < n:
                asyncio.run(one(i))
    finally:
        server.stop()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--app", type=int, default=0, help="visitor cycles against a real server (0: skip)")
    args = ap.parse_args()
    print(f"load: {os.getloadavg()[0]:.1f}; MAX_FINISHED_JOBS={limits.MAX_FINISHED_JOBS}")
    if args.cycles:
        engine_cycles(args.cycles)
    if args.app:
        app_cycles(args.app)
    print(f"load: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
