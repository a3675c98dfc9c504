"""The footprint ledger: what the app's own training has used, per visitor, per page and in all."""
from __future__ import annotations

import collections
import dataclasses
import threading
import time

from engine.core.energy import Footprint


@dataclasses.dataclass
class Totals:
    jobs: int = 0
    duration_s: float = 0.0
    energy_kwh: float = 0.0     # sum over jobs that have a figure (measured, estimated or assumed)
    emissions_g: float = 0.0
    assumed: int = 0            # jobs whose figure is an assumed constant power
    unavailable: int = 0        # jobs with no figure, left out of the sums

    def add(self, fp: Footprint) -> None:
        self.jobs += 1
        self.duration_s += fp.duration_s
        if fp.energy_kwh is None:
            self.unavailable += 1
            return
        self.energy_kwh += fp.energy_kwh
        self.emissions_g += fp.emissions_g or 0.0
        self.assumed += int(fp.kind == "assumed")

    def merge(self, other: "Totals") -> "Totals":
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self


@dataclasses.dataclass(frozen=True)
class LedgerEntry:
    owner: str
    page: str
    label: str
    footprint: Footprint
    at: float


class FootprintLedger:
    """Thread-safe record of footprints keyed by (session owner, page). Totals are kept per key;
    only the last `keep` entries are kept whole, so memory stays bounded on a busy host."""

    def __init__(self, keep: int = 500):
        self._lock = threading.Lock()
        self._totals: dict[tuple[str, str], Totals] = {}
        self._retired: dict[str, Totals] = {}   # per page, from sessions that have ended
        self._recent: collections.deque[LedgerEntry] = collections.deque(maxlen=keep)

    def add(self, owner: str, page: str, footprint: Footprint, label: str = "") -> None:
        with self._lock:
            self._totals.setdefault((owner, page), Totals()).add(footprint)
            self._recent.append(LedgerEntry(owner, page, label, footprint, time.time()))

    def total(self, owner: str | None = None, page: str | None = None) -> Totals:
        """Sum for one session, one page, both, or (no arguments) the whole app."""
        out = Totals()
        with self._lock:
            for (o, p), t in self._totals.items():
                if (owner is None or o == owner) and (page is None or p == page):
                    out.merge(t)
            if owner is None:
                for p, t in self._retired.items():
                    if page is None or p == page:
                        out.merge(t)
        return out

    def by_page(self, owner: str | None = None) -> dict[str, Totals]:
        with self._lock:
            pages = {p for (o, p) in self._totals if owner is None or o == owner}
            if owner is None:
                pages |= set(self._retired)
        return {p: self.total(owner, p) for p in sorted(pages)}

    def recent(self, owner: str | None = None, page: str | None = None, n: int = 50) -> list[LedgerEntry]:
        with self._lock:
            rows = [e for e in self._recent
                    if (owner is None or e.owner == owner) and (page is None or e.page == page)]
        return rows[-n:]

    def forget(self, owner: str) -> None:
        """A session ended: drop its keys, but keep its use in the app's totals."""
        with self._lock:
            for key in [k for k in self._totals if k[0] == owner]:
                self._retired.setdefault(key[1], Totals()).merge(self._totals.pop(key))

    def clear(self) -> None:
        with self._lock:
            self._totals.clear()
            self._retired.clear()
            self._recent.clear()


LEDGER = FootprintLedger()   # the process-wide one; the UI layer wraps nothing around it
