"""A workshop's worth of visitors at once: N sessions open the Pretraining page and press Train
within a few seconds of each other, against a real `streamlit run app.py` server. Used by
tests/test_load.py and bench/bench_load.py (`python bench/bench_load.py --sessions 24`).

Each visitor is a client that speaks Streamlit's own websocket protocol (the protobuf
messages the browser sends and receives): it opens the page from a link, clicks Train, and
re-runs the live-view fragment whenever the server asks, as the browser does. Why not 24
Chromium tabs: on this 2-core machine 24 headless renderers redrawing plotly twice a second
would take the CPU from the server being measured; in a workshop the browsers run on the
visitors' laptops. tests/test_browser.py covers the real browser for one visitor.

Reports what the visitors saw (their queue place and estimate, their curve, errors) and what
the server did: the most jobs training at once (from the saved runs' timings), the longest
wait from click to training, lost jobs (clicked but never finished or saved), and the server's
peak RSS (VmHWM) and thread count before and after.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

ROOT = Path(__file__).resolve().parent.parent
# Short runs so the whole test takes a few minutes: a 50k model, 150 steps, 20 s at most.
PARAMS = "size=50k&steps=150&eval_every=50&sample_every=150&warmup=10&max_seconds=20"
VERBOSE = bool(os.environ.get("LLMX_BENCH_VERBOSE"))
QUEUE_RE = re.compile(r"number (\d+) in the queue \(about (\d+) s\)")


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS) in MB and the OS thread count of a process."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024
        elif key == "Threads":
            out[key] = int(value)
    return out


class Server:
    """`streamlit run app.py` on a free port, with its own run store."""

    def __init__(self, env: dict | None = None):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.runs = Path(tempfile.mkdtemp(prefix="llmx-load-runs-"))
        env = {**os.environ, "LLMX_RUNS_DIR": str(self.runs), "HF_HUB_OFFLINE": "1",
               "CODECARBON_LOG_LEVEL": "error", **(env or {})}
        # The server's log goes to a file: an unread pipe fills up and blocks every thread that writes
        # to it (seen: jobs hung in tqdm's progress bar while saving).
        self.log = tempfile.TemporaryFile()
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
                                      "--server.port", str(self.port), "--server.headless", "true"],
                                     cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/_stcore/stream"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(self.url + "/_stcore/health", timeout=1).read() == b"ok":
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def status(self) -> dict[str, int]:
        return proc_status(self.proc.pid)

    def saved_runs(self) -> list[dict]:
        out = []
        for p in self.runs.glob("*/run.json"):
            d = json.loads(p.read_text())
            out.append({"owner": d["owner"], "seed": d["config"]["seed"], "end": d["created"],
                        "seconds": d["summary"]["seconds"], "steps": d["summary"]["steps"],
                        "status": d["summary"]["status"]})
        return out

    def stop(self) -> str:
        """Stop the server; return its log."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@dataclass
class Visitor:
    """One browser tab, as the server sees it: sends reruns, receives deltas."""
    name: str
    query: str
    page: str = "pretraining"
    events: list[tuple[float, str, str]] = field(default_factory=list)   # (time, kind, text)
    errors: list[str] = field(default_factory=list)
    buttons: dict[str, tuple[str, bool]] = field(default_factory=dict)   # label -> (id, disabled)
    state: str = "idle"          # idle, queued, running, done, failed, stopped
    clicked: float | None = None
    queue_seen: list[tuple[int, int]] = field(default_factory=list)      # (place, eta s)
    curve: bool = False
    interrupted: int = 0         # runs cut short by a newer rerun (normal: a click during a refresh)

    def __post_init__(self):
        self._page_hash = ""
        self._fragments: dict[str, asyncio.Task] = {}
        self._ws = None
        self._finished = asyncio.Event()

    # --- what the browser sends --------------------------------------------------------------
    async def _rerun(self, widget_states=(), fragment_id: str = "") -> None:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query
        cs.page_name = self.page          # the page by its URL path, as on a fresh load, and then
        cs.page_script_hash = self._page_hash   # by its hash, as the browser does (a rerun that
        # st.rerun() merges with a request carrying no hash ran the home page)
        if fragment_id:
            cs.fragment_id, cs.is_auto_rerun = fragment_id, True
        for ws in widget_states:
            cs.widget_states.widgets.append(ws)
        await self._ws.send(msg.SerializeToString())

    async def click(self, label: str) -> None:
        wid, disabled = self.buttons[label]
        assert not disabled, f"{self.name}: {label} is disabled"
        from streamlit.proto.WidgetStates_pb2 import WidgetState
        self.clicked = self.clicked or time.time()
        await self._rerun([WidgetState(id=wid, trigger_value=True)])

    async def _auto_rerun(self, fragment_id: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self._rerun(fragment_id=fragment_id)

    # --- what the browser receives -------------------------------------------------------------
    def _note(self, kind: str, text: str = "") -> None:
        self.events.append((time.time(), kind, text))
        if VERBOSE:
            print(f"{time.strftime('%X')} {self.name} {kind} {text[:80]}", file=sys.stderr, flush=True)

    def _element(self, e) -> None:
        kind = e.WhichOneof("type")
        if kind == "button":
            self.buttons[e.button.label] = (e.button.id, e.button.disabled)
        elif kind == "exception":
            self.errors.append(f"{e.exception.type}: {e.exception.message}")
        elif kind == "alert":
            body = e.alert.body
            if m := QUEUE_RE.search(body):
                self.queue_seen.append((int(m[1]), int(m[2])))
                self._set("queued", body)
            elif "finished" in body:
                self._set("done", body)
            elif "stopped by you" in body:
                self._set("stopped", body)
            elif e.alert.format == e.alert.ERROR:
                self._set("failed", body)
                if self.clicked:
                    self.errors.append(body)
        elif kind == "progress" and self.state in ("idle", "queued"):
            self._set("running", e.progress.text)
        elif kind == "plotly_chart" and e.plotly_chart.id.endswith("pt_curve"):
            self.curve = True

    def _set(self, state: str, text: str) -> None:
        if state != self.state:
            self.state = state
            self._note(state, text)

    async def _receive(self) -> None:
        try:
            await self._receive_all()
        except Exception as e:
            self.errors.append(f"connection: {type(e).__name__}: {e}")
            raise

    async def _receive_all(self) -> None:
        async for raw in self._ws:
            m = ForwardMsg()
            m.ParseFromString(raw)
            kind = m.WhichOneof("type")
            if kind == "navigation":
                self._page_hash = next((p.page_script_hash for p in m.navigation.app_pages
                                        if p.url_pathname == self.page or (p.is_default and not self.page)), "")
            elif kind == "auto_rerun":
                fid = m.auto_rerun.fragment_id
                if fid not in self._fragments:
                    self._fragments[fid] = asyncio.create_task(self._auto_rerun(fid, m.auto_rerun.interval))
            elif kind == "delta" and m.delta.WhichOneof("type") == "new_element":
                self._element(m.delta.new_element)
            elif kind == "script_finished":
                if m.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    self.errors.append("the page script did not compile")
                self.interrupted += m.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN
                self._finished.set()
                self._stop_finished_fragments()
            elif kind == "session_event" and m.session_event.WhichOneof("type") == "script_compilation_exception":
                self.errors.append("script compilation exception")

    def _stop_finished_fragments(self) -> None:
        """The page stops its live view when no job is active (run_every=None): so does the tab."""
        if self.state in ("done", "failed", "stopped"):
            for t in self._fragments.values():
                t.cancel()
            self._fragments.clear()

    async def open(self, ws_url: str) -> None:
        self._ws = await websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None,
                                            open_timeout=60, ping_interval=None)
        self._receiver = asyncio.create_task(self._receive())
        self._finished.clear()
        await self._rerun()
        await asyncio.wait_for(self._finished.wait(), 120)
        self._note("opened")

    async def wait_for(self, states: tuple[str, ...], timeout: float) -> bool:
        end = time.time() + timeout
        while time.time() < end and self.state not in states and not self._receiver.done():
            await asyncio.sleep(0.1)
        return self.state in states

    async def close(self) -> None:
        for t in self._fragments.values():
            t.cancel()
        if self._ws is not None:
            await self._ws.close()
        self._receiver.cancel()


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    points = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    best = now = 0
    for _, d in points:
        now += d
        best = max(best, now)
    return best


async def _load(server: Server, sessions: int, params: str, spread: float, timeout: float, seed: int) -> dict:
    rng = random.Random(seed)
    visitors = [Visitor(f"v{i}", f"{params}&seed={i}") for i in range(sessions)]
    samples = []

    async def one(v: Visitor) -> None:
        await asyncio.sleep(rng.uniform(0, spread))        # visitors arrive within a few seconds
        try:
            await v.open(server.ws_url)
            await asyncio.sleep(rng.uniform(0.2, 1.5))      # ... and press Train soon after
            await v.click("Train")
            await v.wait_for(("done", "failed", "stopped"), timeout)
        except Exception as e:                              # a broken connection is an error too
            v.errors.append(f"{type(e).__name__}: {e}")

    async def sample() -> None:
        while True:
            samples.append(server.status())
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    t0 = time.time()
    try:
        await asyncio.wait_for(asyncio.gather(*(one(v) for v in visitors)), spread + timeout + 180)
    except asyncio.TimeoutError:
        for v in visitors:
            v.errors.append(f"still {v.state} when the test ended")
    wall = time.time() - t0
    samples.append(server.status())
    for v in visitors:
        await v.close()
    await asyncio.sleep(3)                                  # the server notices the closed tabs
    sampler.cancel()
    after = server.status()
    return {"visitors": visitors, "samples": samples, "after": after, "wall": wall}


def report(server: Server, res: dict, baseline: dict) -> dict:
    visitors: list[Visitor] = res["visitors"]
    runs = server.saved_runs()
    waits, queued_ok, queued_any, eta_ratio = [], 0, 0, []
    for v in visitors:
        start = next((t for t, k, _ in v.events if k in ("running", "done")), None)
        if v.clicked and start:
            waits.append(start - v.clicked)
            if v.queue_seen:   # the first estimate shown against the wait that followed
                eta_ratio.append(v.queue_seen[0][1] / max(1.0, start - v.clicked))
        if any(k == "queued" for _, k, _ in v.events):
            queued_any += 1
            queued_ok += bool(v.queue_seen) and all(eta > 0 for _, eta in v.queue_seen)
    # Training intervals from the saved runs: [end - seconds, end] lies inside the slot each job held.
    # The summary rounds seconds to 0.1, so a start can read up to 0.05 s early: with runs of about a
    # second, a job that took a slot just freed would seem to overlap the job before it.
    overlap = max_overlap([(r["end"] - r["seconds"] + 0.05, r["end"]) for r in runs])
    clicked = [v for v in visitors if v.clicked]
    done = [v for v in clicked if v.state == "done"]
    saved_seeds = {r["seed"] for r in runs}
    lost = [v.name for v in clicked if v.state != "done" or int(v.name[1:]) not in saved_seeds]
    return {
        "sessions": len(visitors), "clicked": len(clicked), "finished": len(done),
        "curve_share": sum(v.curve for v in done) / max(1, len(visitors)),
        "queued_sessions": queued_any, "queued_saw_place_and_eta": queued_ok,
        "max_training_at_once": overlap, "longest_wait_s": max(waits, default=0.0),
        "median_wait_s": sorted(waits)[len(waits) // 2] if waits else 0.0,
        "first_eta_over_actual_wait_median": sorted(eta_ratio)[len(eta_ratio) // 2] if eta_ratio else 0.0,
        "lost_jobs": lost, "saved_runs": len(runs),
        "errors": {v.name: v.errors for v in visitors if v.errors},
        "runs_cut_by_a_newer_rerun": sum(v.interrupted for v in visitors),
        "rss_idle_mb": baseline["VmRSS"], "rss_peak_mb": max(s["VmHWM"] for s in res["samples"]),
        "rss_after_mb": res["after"]["VmRSS"],
        "threads_idle": baseline["Threads"], "threads_peak": max(s["Threads"] for s in res["samples"]),
        "threads_after": res["after"]["Threads"], "wall_s": res["wall"],
    }


def run_load(sessions: int, params: str = PARAMS, spread: float = 3.0, timeout: float = 240,
             seed: int = 0, server_env: dict | None = None) -> dict:
    server = Server(server_env)
    try:
        cold = time.perf_counter() - server.t0
        warm = Visitor("warmup", params, page="")           # the home page, as a first visitor would
        asyncio.run(_warm(server, warm))
        time.sleep(2)
        baseline = server.status()
        res = asyncio.run(_load(server, sessions, params, spread, timeout, seed))
        out = report(server, res, baseline)
        out["health_s"] = cold
        out["runs_dir"] = str(server.runs)   # what the room view reads (results.jsonl)
    finally:
        stderr = server.stop()
    out["server_tracebacks"] = stderr.count("Traceback")
    return out


async def _warm(server: Server, v: Visitor) -> None:
    await v.open(server.ws_url)
    await v.close()
