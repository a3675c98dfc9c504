"""The room's results: every job that finishes on this server, as its stage, its settings and its
final metrics, and nothing else: no visitor, no uploaded text, no typed prompt (fields marked
`private` in a config are left out). The instructors' room view draws the whole room's runs as one
experiment from these rows; they are small, so hundreds cost nothing to read.

Kept in memory (the newest MAX_ROWS) and appended to results.jsonl in the run store, so a server
restart keeps the day's workshop.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import math
import threading
import time

from engine.core import limits
from engine.core.config import StageConfig
from engine.core.runs import runs_dir

MAX_ROWS = int(limits.MAX_ROOM_RESULTS)


def settings_of(config) -> dict:
    """A config's settings a room may see: every field but the private ones (free text people type)."""
    if not isinstance(config, StageConfig):
        return {}
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if not f.metadata.get("private")}


def metrics_of(summary: dict) -> dict:
    """The finite numbers of a run's summary (its final metrics and counts)."""
    return {k: v for k, v in summary.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class Results:
    def __init__(self):
        self._lock = threading.Lock()
        self._rows: collections.deque[dict] = collections.deque(maxlen=MAX_ROWS)
        self._dir = None   # the run store the rows belong to: another store (LLMX_RUNS_DIR) is another room

    def _path(self):
        return runs_dir() / "results.jsonl"

    def _load(self) -> None:
        if self._dir == runs_dir():
            return
        self._dir = runs_dir()
        self._rows.clear()
        if self._path().exists():
            for line in self._path().read_text().splitlines()[-MAX_ROWS:]:
                try:
                    self._rows.append(json.loads(line))
                except ValueError:
                    continue

    def add(self, stage: str, label: str, config, summary: dict, status: str) -> None:
        row = {"stage": stage, "label": label, "status": status, "finished": time.time(),
               "settings": settings_of(config), "metrics": metrics_of(summary)}
        with self._lock:
            self._load()
            self._rows.append(row)
            try:
                self._path().parent.mkdir(parents=True, exist_ok=True)
                with open(self._path(), "a") as f:
                    f.write(json.dumps(row, default=str) + "\n")
            except OSError:
                pass   # a read-only disk loses the file, not the room's view

    def rows(self, stage: str | None = None) -> list[dict]:
        with self._lock:
            self._load()
            return [r for r in self._rows if stage is None or r["stage"] == stage]

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self._dir = runs_dir()


RESULTS = Results()
