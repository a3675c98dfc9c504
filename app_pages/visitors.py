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

import re
import threading
import uuid
from typing import Callable

from engine.core import limits

TOKEN = re.compile(r"[0-9a-f]{16}")


def new_token() -> str:
    return uuid.uuid4().hex[:16]


class Visitors:
    """Process-wide: each visitor's open sessions, the jobs each page slot of theirs started, and
    the timer that stops their jobs once their last session has been gone for `grace` seconds."""

    def __init__(self, on_gone: Callable[[str], None], grace: float = limits.VISITOR_GRACE_SECONDS):
        self.on_gone, self.grace = on_gone, grace
        self._lock = threading.Lock()
        self._sessions: dict[str, set[str]] = {}
        self._slots: dict[str, dict[str, list[str]]] = {}
        self._timers: dict[str, threading.Timer] = {}

    def attach(self, visitor: str, session: str) -> None:
        with self._lock:
            self._sessions.setdefault(visitor, set()).add(session)
            if timer := self._timers.pop(visitor, None):
                timer.cancel()

    def detach(self, visitor: str, session: str) -> None:
        with self._lock:
            left = self._sessions.get(visitor, set())
            left.discard(session)
            if left or visitor in self._timers:
                return
            timer = threading.Timer(self.grace, self._gone, args=(visitor,))
            timer.daemon = True
            self._timers[visitor] = timer
        timer.start()

    def _gone(self, visitor: str) -> None:
        with self._lock:
            if self._sessions.get(visitor) or self._timers.pop(visitor, None) is None:
                return   # came back meanwhile
            self._sessions.pop(visitor, None)
            self._slots.pop(visitor, None)
        self.on_gone(visitor)

    def jobs(self, visitor: str, slot: str) -> list[str]:
        with self._lock:
            return list(self._slots.get(visitor, {}).get(slot, []))

    def set_jobs(self, visitor: str, slot: str, ids: list[str]) -> None:
        with self._lock:
            self._slots.setdefault(visitor, {})[slot] = list(ids)

    def all_jobs(self, visitor: str) -> list[str]:
        with self._lock:
            return [i for ids in self._slots.get(visitor, {}).values() for i in ids]

    def online(self) -> int:
        with self._lock:
            return sum(1 for s in self._sessions.values() if s)
