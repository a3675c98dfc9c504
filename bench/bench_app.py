"""The app as a visitor meets it, in headless Chromium against a real `streamlit run app.py`.

    python bench/bench_app.py [--rounds 3] [--ray local] [--pages pretraining,sft,...] [--lengths bench/out/job_lengths.json]

Each round starts a fresh server and measures:
- cold start: new process to the home page drawn for a first visitor (issue 17's target: at most 4 s),
  and to a training page drawn (that page waits for the background imports);
- per training page, its quick demo (the page's defaults): click on Train to the first progress drawn
  (a loss point, or the preparation bar with its estimate; target: at most 1 s), and click to finished
  (target: at most 30 s), one page after another so each job has the machine to itself;
- the server's idle RSS after the first page and its peak during the runs.

Prints each figure's median and spread over the rounds, with the load average at the start and the
end, and writes every page's median click-to-finished to --lengths for bench/bench_queue.py. With
`--ray local` the server runs its jobs in Ray workers (LLMX_RAY_ADDRESS, issue 15): the first job on
a fresh Ray and a second one on the warm worker, against threads in the same round (interleaved).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# page path -> the button that starts its quick demo: a slot's Train (`.st-key-<slot>_start`), or the
# label of the one-click experiment that is the page's quick demo (attention's is in a folded tab)
PAGES = {"pretraining": "pt", "data": "dt_compare", "sft": "sft", "rlhf": "rl", "cai": "cai",
         "attention": "Watch an induction head form", "scaling": "sc_sweep", "carbon": "cc"}
PROGRESS = '[data-testid="stProgress"]'


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Server:
    def __init__(self, env: dict):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.runs = tempfile.mkdtemp(prefix="bench-app-runs-")
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
             "--server.headless", "true"], cwd=ROOT, env={**os.environ, "LLMX_RUNS_DIR": self.runs, **env},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"
        while True:
            try:
                urllib.request.urlopen(self.url + "/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        self.health = time.perf_counter() - self.t0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def train(page, url: str, start: str, timeout: float = 240) -> tuple[float, float]:
    """Open `url`, press `start` (PAGES) and return (click to first progress, click to finished)."""
    page.goto(url)
    button = (page.get_by_role("button", name=start) if " " in start else page.locator(f".st-key-{start}_start button"))
    button.wait_for(timeout=60000)
    time.sleep(1.0)                                  # the page settles, as a person reads before clicking
    before = page.locator(PROGRESS).count()
    t = time.perf_counter()
    button.click()
    page.wait_for_function(f"n => document.querySelectorAll('{PROGRESS}').length > n", arg=before,
                           timeout=60000, polling=20)
    first = time.perf_counter() - t
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stAlertContentSuccess"], [data-testid="stAlert"]')]
                 .some(e => e.innerText.includes('finished'))""", timeout=timeout * 1000, polling=100)
    return first, time.perf_counter() - t


def one_round(browser, pages: list[str], ray: str) -> dict:
    env = {"LLMX_RAY_ADDRESS": ray, "RAY_AUTH_MODE": "disabled"} if ray else {}
    server = Server(env)
    out = {"health_s": server.health}
    try:
        tab = browser.new_page(viewport={"width": 1400, "height": 900})
        tab.goto(server.url + "/")
        tab.get_by_text("Start with Pretraining").wait_for(timeout=60000)
        out["home_s"] = time.perf_counter() - server.t0
        tab.goto(server.url + "/pretraining")
        tab.locator(".st-key-pt_start button").wait_for(timeout=60000)
        out["training_page_s"] = time.perf_counter() - server.t0
        time.sleep(3 if not ray else 20)         # the background imports (and, on Ray, the warm workers)
        out["idle_mb"] = rss_mb(server.proc.pid)
        for name in pages:
            first, total = train(tab, f"{server.url}/{name}", PAGES[name])
            out[f"{name}/first_s"], out[f"{name}/total_s"] = first, total
            out["peak_mb"] = max(out.get("peak_mb", 0), rss_mb(server.proc.pid))
        if ray:   # the same page again on the now-warm worker, other settings (not a replay)
            first, _ = train(tab, f"{server.url}/pretraining?seed=1", "pt")
            out["pretraining/first_warm_s"] = first
        tab.close()
    finally:
        server.stop()
    return out


def summary(rounds: list[dict], key: str) -> str:
    xs = [r[key] for r in rounds if key in r]
    if not xs:
        return "-"
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pages", default=",".join(PAGES))
    ap.add_argument("--ray", default="", help="also run each round on this LLMX_RAY_ADDRESS (e.g. local)")
    ap.add_argument("--lengths", default=str(ROOT / "bench/out/job_lengths.json"))
    args = ap.parse_args()
    pages = args.pages.split(",")
    print(f"load average at start: {load()}", flush=True)
    results = {"threads": [], "ray": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for i in range(args.rounds):
            for backend in (["threads", "ray"] if args.ray else ["threads"]):   # interleaved
                r = one_round(browser, pages, args.ray if backend == "ray" else "")
                results[backend].append(r)
                print(f"round {i + 1} {backend}: " + json.dumps({k: round(v, 2) for k, v in r.items()}), flush=True)
        browser.close()
    print(f"load average at the end: {load()}")
    for backend, rounds in results.items():
        if not rounds:
            continue
        print(f"\n{backend}, median (min–max) of {len(rounds)} rounds:")
        for key in ("health_s", "home_s", "training_page_s", "idle_mb", "peak_mb", "pretraining/first_warm_s"):
            print(f"  {key:28s} {summary(rounds, key)}")
        for name in pages:
            print(f"  {name:12s} click→first progress {summary(rounds, f'{name}/first_s')} s, "
                  f"click→finished {summary(rounds, f'{name}/total_s')} s")
    lengths = {n: statistics.median(r[f"{n}/total_s"] for r in results["threads"]) for n in pages}
    Path(args.lengths).parent.mkdir(parents=True, exist_ok=True)
    Path(args.lengths).write_text(json.dumps(lengths, indent=1))
    print(f"\nwrote {args.lengths}")


if __name__ == "__main__":
    main()
