"""A workshop's worth of visitors at once against a real `streamlit run app.py`:

    python bench/bench_load.py --sessions 30 [--ray local]

The visitors and the measurements are in tests/visitors.py (tests/test_load.py runs the same with five
and with twenty on Ray). With `--ray ADDRESS` the server runs the jobs on Ray (LLMX_RAY_ADDRESS); the
peak memory of Ray's own processes and of each worker is sampled from /proc every half second."""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from visitors import PARAMS, run_load  # noqa: E402


def ray_processes() -> dict[str, float]:
    """RSS in MB of every Ray process on this machine, by pid and name (workers are `ray::...`)."""
    out = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "ray" not in cmd or "bench_load" in cmd:
                continue
            name = cmd.split()[0].rsplit("/", 1)[-1] if not cmd.startswith("ray::") else cmd.split()[0]
            if not any(k in cmd for k in ("ray::", "gcs_server", "raylet", "/ray/", "dashboard", "monitor.py",
                                          "runtime_env", "log_monitor")):
                continue
            rss = next(int(line.split()[1]) for line in (d / "status").read_text().splitlines()
                       if line.startswith("VmRSS:"))
            out[f"{d.name} {name}"] = rss / 1024
        except (OSError, StopIteration):
            continue
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=24)
    ap.add_argument("--params", default=PARAMS)
    ap.add_argument("--spread", type=float, default=3.0, help="seconds over which visitors arrive")
    ap.add_argument("--ray", default="", help="LLMX_RAY_ADDRESS for the server (e.g. local)")
    args = ap.parse_args()
    env = {"LLMX_RAY_ADDRESS": args.ray, "RAY_AUTH_MODE": "disabled"} if args.ray else None
    peaks: dict[str, float] = {}
    total = [0.0]
    done = threading.Event()

    def sample():
        while not done.wait(0.5):
            now = ray_processes()
            for k, v in now.items():
                peaks[k] = max(peaks.get(k, 0.0), v)
            total[0] = max(total[0], sum(now.values()))

    if args.ray:
        threading.Thread(target=sample, daemon=True).start()
    print(f"load before: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    t = time.time()
    out = run_load(args.sessions, args.params, args.spread, server_env=env)
    done.set()
    print(f"load after: {' '.join(Path('/proc/loadavg').read_text().split()[:3])} ({time.time() - t:.0f} s)")
    for k, v in out.items():
        print(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}")
    if args.ray:
        workers = sorted(v for k, v in peaks.items() if "ray::" in k)
        print(f"Ray processes, peak RSS all at once: {total[0]:.0f} MB")
        print("Ray workers, peak RSS each: " + ", ".join(f"{v:.0f}" for v in workers) + " MB")
        print("Ray's own processes, peak RSS: " + ", ".join(f"{k.split(' ', 1)[1]} {v:.0f}" for k, v in sorted(peaks.items())
                                                           if "ray::" not in k) + " MB")


if __name__ == "__main__":
    main()
