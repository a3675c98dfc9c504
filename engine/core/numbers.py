"""Numbers as the pages show them."""
from __future__ import annotations


def human(n: float) -> str:
    """A count in three significant figures with k, M, B or T: 1.23M, 45.6k, 820."""
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.0f}"
