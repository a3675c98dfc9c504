"""Fitting what the toy models measured: a power law L(N) = E + A/N^alpha with a bootstrap interval on
the exponent, and the bottom of an isoFLOP curve (Hoffmann et al. 2022, Approach 2)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from engine.core.config import UserError


@dataclasses.dataclass
class PowerLawFit:
    E: float
    A: float
    alpha: float
    alpha_std: float          # bootstrap standard deviation of alpha
    alpha_range: tuple        # 16th to 84th percentile of the bootstrap: a 68% interval
    floor: bool               # E fitted (Chinchilla's form) or fixed at 0 (Kaplan's L(N) = (N_c/N)^alpha_N)
    rms: float                # root-mean-square residual in ln L

    def predict(self, n):
        return self.E + self.A * np.asarray(n, float) ** -self.alpha


def _best_fit(x: np.ndarray, logl: np.ndarray, floor: bool) -> tuple[float, float, float, float]:
    """For a grid of floors E, fit ln(L - E) = ln A - alpha ln N by least squares (a line in
    log space) and keep the E whose curve fits ln L best; a second, finer grid refines E.
    Without a floor it is one straight-line fit in log-log space."""
    L = np.exp(logl)

    def scan(grid):
        y = np.log(np.clip(L[None, :] - grid[:, None], 1e-12, None))
        xm, ym = x.mean(), y.mean(1, keepdims=True)
        slope = ((x - xm) * (y - ym)).sum(1) / ((x - xm) ** 2).sum()
        icpt = ym[:, 0] - slope * xm
        sse = ((logl[None, :] - np.log(grid[:, None] + np.exp(icpt[:, None] + slope[:, None] * x))) ** 2).sum(1)
        i = int(np.argmin(sse))
        return i, float(grid[i]), math.exp(icpt[i]), float(-slope[i]), float(sse[i])

    if not floor:
        return scan(np.zeros(1))[1:]
    top = 0.995 * L.min()
    coarse = np.linspace(0.0, top, 200)
    i = scan(coarse)[0]
    step = coarse[1] - coarse[0]
    return scan(np.linspace(max(0.0, coarse[i] - step), min(top, coarse[i] + step), 101))[1:]


def fit_power_law(n, loss, floor: bool = True, n_boot: int = 300, seed: int = 0) -> PowerLawFit:
    """Fit L(N) = E + A/N^alpha (E = 0 when not `floor`). The exponent's uncertainty comes from
    a residual bootstrap: resample the residuals (in ln L) onto the fitted curve and refit.
    With a floor, E and alpha trade off when the points barely bend, and the interval says so."""
    n, loss = np.asarray(n, float), np.asarray(loss, float)
    ok = np.isfinite(loss) & (loss > 0)
    n, loss = n[ok], loss[ok]
    sizes = len(np.unique(n))
    need = 4 if floor else 3  # one point more than the parameters, so something is left to judge the fit
    if sizes < need:
        raise UserError(f"A power law {'with a floor ' if floor else ''}needs at least {need} model sizes to fit; "
                        f"{'there is' if sizes == 1 else 'there are'} {sizes}. Let more models finish, or sweep "
                        "more sizes.")
    x, logl = np.log(n), np.log(loss)
    E, A, alpha, sse = _best_fit(x, logl, floor)
    fitted = np.log(E + A * n ** -alpha)
    resid = logl - fitted
    rng = np.random.default_rng(seed)
    boots = np.array([_best_fit(x, fitted + rng.choice(resid, len(resid)), floor)[2] for _ in range(n_boot)])
    return PowerLawFit(E, A, alpha, float(boots.std()), tuple(float(q) for q in np.percentile(boots, [16, 84])),
                       floor, math.sqrt(sse / len(n)))


def parabola_min(n, loss) -> dict | None:
    """The bottom of an isoFLOP curve: fit L = a·(ln N)² + b·ln N + c (Hoffmann 2022, Approach 2).
    None when the points do not curve upward (no minimum to find)."""
    n, loss = np.asarray(n, float), np.asarray(loss, float)
    if len(np.unique(n)) < 3:
        return None
    a, b, c = np.polyfit(np.log(n), loss, 2)
    if a <= 0:
        return None
    x = -b / (2 * a)
    return {"n_opt": math.exp(x), "loss": c - b * b / (4 * a), "coef": (a, b, c),
            "inside": bool(np.log(n).min() <= x <= np.log(n).max())}


@dataclasses.dataclass
class IsoProfile:
    """One budget's isoFLOP curve: the finished sizes and their final losses, and its bottom when the
    parabola's minimum lies among the sizes tried (an extrapolated one would be a guess)."""
    budget: float
    n: tuple
    loss: tuple
    best: dict | None
    note: str

    @property
    def d_opt(self) -> float:
        return self.budget / (6 * self.best["n_opt"])


def isoflop_profiles(runs: list[dict]) -> list[IsoProfile]:
    """Hoffmann et al. 2022's Approach 2 on finished runs (dicts with "budget", "N (non-embedding)"
    and "eval_loss"): per budget, a parabola in ln N and its minimum, or why there is none."""
    out = []
    for c in sorted({r["budget"] for r in runs}):
        n, loss = zip(*sorted((r["N (non-embedding)"], r["eval_loss"]) for r in runs if r["budget"] == c))
        best = parabola_min(n, loss)
        if len(n) < 3:
            note = "needs 3 sizes"
        elif best is None:
            note = "no U: the losses do not curve upward"
        elif not best["inside"]:
            note = f"no U here: the bottom lies {'below' if best['n_opt'] < min(n) else 'above'} the sizes tried"
        else:
            note = "bottom of the U"
        out.append(IsoProfile(c, n, loss, best if note == "bottom of the U" else None, note))
    return out
