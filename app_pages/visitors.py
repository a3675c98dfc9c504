"""Who a visitor is, across reloads and tabs, and which jobs are theirs.

A websocket session ends with every reload, and phones discard background tabs on their own: a
visitor who was the session would lose their runs each time. So a visitor is a token in the URL
(`?v=...`), set on their first page view and kept by every page they open. A reload or a copy of
the URL in a second tab finds the same visitor, the same jobs and the same totals. The links an
instructor hands out leave the token out, so each learner who opens one is someone new.

When a visitor's last tab closes, their running jobs go on for a grace period
(limits.VISITOR_GRACE_SECONDS) before they are stopped: a reload or a phone waking its tab
comes back within it; a tab closed for good frees its slots when it runs out.
"""
from __future__ import annotations

import collections
import re
import threading
import time
import uuid
from typing import Callable

from engine.core import limits

TOKEN = re.compile(r"[0-9a-f]{16}")


def new_token() -> str:
    return uuid.uuid4().hex[:16]


class Visitors:
    """Process-wide: each visitor's open sessions, the jobs each page slot of theirs started, and
    when their jobs are to be stopped (their last session gone `grace` seconds). One sweeper
    thread serves every visitor: a room of a hundred closing their laptops starts no hundred timers."""

    def __init__(self, on_gone: Callable[[str], None], grace: float = limits.VISITOR_GRACE_SECONDS):
        self.on_gone, self.grace = on_gone, grace
        self._cond = threading.Condition()
        self._sessions: dict[str, set[str]] = {}
        self._slots: dict[str, dict[str, list[str]]] = {}
        # Every job a visitor started, newest last: a lesson's steps and the run pickers look back
        # past the runs a slot has since replaced (the runner keeps as many finished jobs).
        self._started: dict[str, collections.deque[str]] = {}
        self._leaving: dict[str, float] = {}      # visitor -> when their jobs stop, if none come back
        self._sweeper: threading.Thread | None = None

    def attach(self, visitor: str, session: str) -> None:
        with self._cond:
            self._sessions.setdefault(visitor, set()).add(session)
            self._leaving.pop(visitor, None)

    def detach(self, visitor: str, session: str) -> None:
        with self._cond:
            left = self._sessions.get(visitor, set())
            left.discard(session)
            if left:
                return
            self._leaving[visitor] = time.monotonic() + self.grace
            if self._sweeper is None or not self._sweeper.is_alive():
                self._sweeper = threading.Thread(target=self._sweep, name="visitors", daemon=True)
                self._sweeper.start()
            self._cond.notify()

    def _sweep(self) -> None:
        """Stop the jobs of visitors whose grace period ran out; end when nobody is leaving."""
        while True:
            with self._cond:
                if not self._leaving:
                    self._sweeper = None
                    return
                now = time.monotonic()
                gone = [v for v, at in self._leaving.items() if at <= now]
                for v in gone:
                    del self._leaving[v]
                    self._sessions.pop(v, None)
                    self._slots.pop(v, None)
                    self._started.pop(v, None)
                if not gone:
                    self._cond.wait(min(self._leaving.values()) - now)
            for v in gone:
                self.on_gone(v)

    def jobs(self, visitor: str, slot: str) -> list[str]:
        with self._cond:
            return list(self._slots.get(visitor, {}).get(slot, []))

    def set_jobs(self, visitor: str, slot: str, ids: list[str]) -> None:
        with self._cond:
            self._slots.setdefault(visitor, {})[slot] = list(ids)
            self._started.setdefault(visitor, collections.deque(maxlen=limits.MAX_FINISHED_JOBS)).extend(ids)

    def all_jobs(self, visitor: str) -> list[str]:
        """Every job the visitor started on any page, oldest first (the newest MAX_FINISHED_JOBS)."""
        with self._cond:
            return list(self._started.get(visitor, ()))

    def online(self) -> int:
        with self._cond:
            return sum(1 for s in self._sessions.values() if s)
