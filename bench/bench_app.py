"""The app as a visitor meets it: cold start, idle memory, memory and latency of one default run.

`python bench/bench_app.py` starts `streamlit run app.py` on a free port, opens the Pretraining
page in headless Chromium, presses Train with the default preset, and samples the server's RSS
every 0.2 s until the run ends. Prints: seconds until the server answers its health check (and
its RSS then), seconds to the first page rendered, idle RSS, the seconds from the click to the
first loss point drawn, and peak RSS during the run.
"""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LLMX_RUNS_DIR": "/tmp/bench-app-runs"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    health = time.perf_counter() - t0      # the server answers; the app's modules load on the first visit
    rss_health = rss_mb(proc.pid)
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium",
                                  args=["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = b.new_page()
            page.goto(url + "/pretraining")
            page.get_by_role("button", name="Train").wait_for()
            cold = time.perf_counter() - t0
            time.sleep(2)
            idle = rss_mb(proc.pid)
            t_click = time.perf_counter()
            page.get_by_role("button", name="Train").click()
            page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .scatterlayer path.js-line').length > 0",
                                   timeout=30000, polling=50)
            first = time.perf_counter() - t_click
            peak = idle
            while not page.get_by_text("finished").count():
                peak = max(peak, rss_mb(proc.pid))
                time.sleep(0.2)
            total = time.perf_counter() - t_click
            # Again on the warm server with another seed (the same settings would replay from the cache).
            page.goto(url + "/pretraining?seed=1")
            page.get_by_role("button", name="Train").wait_for()
            time.sleep(1)
            page.get_by_role("button", name="Train").click()
            t_click = time.perf_counter()
            page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot .scatterlayer path.js-line').length > 0",
                                   timeout=30000, polling=50)
            warm = time.perf_counter() - t_click
            b.close()
    finally:
        proc.terminate()
    print(f"new process to /_stcore/health answering: {health:.1f} s, RSS then {rss_health:.0f} MB")
    print(f"cold start to the Pretraining page drawn: {cold:.1f} s")
    print(f"idle RSS after the first page: {idle:.0f} MB")
    print(f"click to first loss point drawn: {first:.2f} s (first run on a new server), {warm:.2f} s (warm server); "
          f"default run finished after {total:.1f} s")
    print(f"peak RSS during one default run: {peak:.0f} MB (target < 1024)")


if __name__ == "__main__":
    main()
