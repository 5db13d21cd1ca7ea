"""Chinchilla approach 2: per isoFLOP budget, fit loss against log N and take the minimum; then N_opt ∝ C^a.

Hoffmann et al. 2022, §3.2: a parabola per isoFLOP profile, minima fitted as power laws of C. The parabola is
biased when the profile is asymmetric (Besiroglu et al. 2024), so a cubic is offered as the more flexible
option. A minimum outside the sampled sizes (or a profile that is not convex there) is not bracketed: the
budget is reported and excluded from the power-law fit.

The bootstrap keeps the design (the sizes of every slice) and resamples the profiles' residuals: drawing rows
instead dropped sizes from 5-size slices, lost the bracket in ~80 % of resamples of the CPU quickstart, and
conditioned the interval on the resamples that survived.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from scaling_lab.errors import ConfigError, FitError
from scaling_lab.fitting import bootstrap
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.laws import FittedFrontier

CURVES = {"parabola": 2, "cubic": 3}
"""Profile models (polynomial degree in log N)."""


@dataclass(frozen=True, kw_only=True)
class Approach2Config:
    """How approach 2 fits."""

    curve: str = "parabola"
    """Profile model per budget: ``parabola`` (Chinchilla) or ``cubic`` (more flexible)."""
    budget_rtol: float = 0.05
    """Points whose C differ by less than this relative amount share a budget."""
    min_sizes: int = 5
    """Budgets with fewer distinct model sizes are excluded (a parabola needs 3; 5 leaves some to spare)."""
    min_budgets: int = 3
    """Skip approach 2 with fewer usable (bracketed) budgets than this."""

    def __post_init__(self) -> None:
        if self.curve not in CURVES:
            raise ConfigError(f"approach2.curve={self.curve!r} is unknown: choose one of {', '.join(CURVES)}")
        if self.min_sizes < CURVES[self.curve] + 1:
            raise ConfigError(
                f"approach2.min_sizes={self.min_sizes} cannot fit a {self.curve}: use at least {CURVES[self.curve] + 1}"
            )
        if self.min_budgets < 2:
            raise ConfigError(f"approach2.min_budgets={self.min_budgets}: a power law needs at least 2")
        if not 0 < self.budget_rtol < 1:
            raise ConfigError(f"approach2.budget_rtol={self.budget_rtol} must be in (0, 1), for example 0.05")


def assign_budgets(flops: np.ndarray, rtol: float) -> np.ndarray:
    """Budget label (its geometric-mean C) of each point: sorted C split where consecutive values differ by > rtol."""
    flops = np.asarray(flops, dtype=float)
    order = np.argsort(flops)
    log_sorted = np.log(flops[order])
    new = np.concatenate([[True], np.diff(log_sorted) > np.log1p(rtol)])
    cluster = np.cumsum(new) - 1
    centres = np.exp(np.bincount(cluster, weights=log_sorted) / np.bincount(cluster))
    labels = np.empty_like(flops)
    labels[order] = centres[cluster]
    return labels


def profile_minimum(log_x: np.ndarray, loss: np.ndarray, degree: int) -> tuple[float, float, bool]:
    """Fit loss = poly(log x) and return (log x at the minimum, loss there, bracketed).

    Bracketed means a local minimum lies strictly inside the sampled range of log x.
    """
    poly = np.polynomial.Polynomial.fit(log_x, loss, degree)
    low, high = float(log_x.min()), float(log_x.max())
    second = poly.deriv(2)
    candidates = [float(r.real) for r in poly.deriv(1).roots() if abs(r.imag) < 1e-12 and second(r.real) > 0]
    inside = [r for r in candidates if low < r < high]
    if inside:
        best = min(inside, key=poly)
        return best, float(poly(best)), True
    grid = np.linspace(low, high, 201)
    best = float(grid[np.argmin(poly(grid))])
    return best, float(poly(best)), False


@dataclass(frozen=True, kw_only=True)
class Approach2Result(FittedFrontier):
    """N_opt(C) = k_n C^a and D_opt(C) = k_d C^b from per-budget minima."""

    a: float
    """Exponent of N_opt ∝ C^a."""
    b: float
    """Exponent of D_opt ∝ C^b."""
    k_n: float
    """N_opt(C) = k_n · C^a."""
    k_d: float
    """D_opt(C) = k_d · C^b."""
    curve: str
    """Profile model used per budget."""
    n_budgets: int
    """Budgets used in the power-law fits (bracketed, enough sizes)."""
    n_points: int
    """Points in those budgets."""
    budgets: list[dict[str, Any]]
    """Every budget: flops, n_opt, d_opt, loss_opt, n_sizes, bracketed, used, reason."""
    min_sizes: int = 5
    """Sizes a budget needed to be fitted."""
    ci95: dict[str, list[float]] | None = None
    """Percentile intervals of a, b, k_n, k_d; None without a bootstrap."""
    n_bootstrap_failed: int = 0
    """Resamples whose fit failed."""
    bootstrap_samples: list[dict[str, float]] | None = None
    """Per resample {a, b, k_n, k_d} (for bands in figures); None without a bootstrap."""

    def to_dict(self) -> dict[str, Any]:
        """fit.json's ``approach2`` object (issue 4, item 10)."""
        keys = ("a", "b", "k_n", "k_d", "curve", "n_budgets", "n_points", "min_sizes", "budgets")
        out = {k: getattr(self, k) for k in keys}
        if self.ci95 is not None:
            out["ci95"] = self.ci95
            out["bootstrap_samples"] = self.bootstrap_samples
        out["n_bootstrap_failed"] = self.n_bootstrap_failed  # all failed → no ci95, and this says why
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Approach2Result:
        return cls(**{k: values[k] for k in cls.__dataclass_fields__ if k in values})


def _power_law(flops: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Least squares of log value on log C: returns (exponent, coefficient)."""
    slope, intercept = np.polyfit(np.log(flops), np.log(values), 1)
    return float(slope), float(np.exp(intercept))


def _budgets(table: pd.DataFrame, config: Approach2Config) -> list[dict[str, Any]]:
    labels = assign_budgets(table["flops"].to_numpy(), config.budget_rtol)
    degree = CURVES[config.curve]
    out = []
    for flops in np.unique(labels):
        rows = table[labels == flops]
        n_sizes = int(rows["n_params"].nunique())
        entry: dict[str, Any] = {"flops": float(flops), "n_sizes": n_sizes, "n_points": len(rows)}
        if n_sizes < config.min_sizes:
            out.append({**entry, "bracketed": False, "used": False, "reason": f"{n_sizes} sizes < {config.min_sizes}"})
            continue
        loss = rows["loss"].to_numpy()
        log_n, loss_opt, bracketed_n = profile_minimum(np.log(rows["n_params"].to_numpy()), loss, degree)
        log_d, _, bracketed_d = profile_minimum(np.log(rows["n_tokens"].to_numpy()), loss, degree)
        bracketed = bracketed_n and bracketed_d
        entry.update(n_opt=float(np.exp(log_n)), d_opt=float(np.exp(log_d)), loss_opt=loss_opt, bracketed=bracketed)
        entry.update(used=bracketed, reason="" if bracketed else "minimum not bracketed by the sampled sizes")
        out.append(entry)
    return out


def _fit(table: pd.DataFrame, config: Approach2Config) -> Approach2Result:
    budgets = _budgets(table, config)
    used = [b for b in budgets if b["used"]]
    if len(used) < config.min_budgets:
        reasons = "; ".join(f"C={b['flops']:.3g}: {b['reason']}" for b in budgets if not b["used"])
        raise FitError(
            f"approach2 needs {config.min_budgets} budgets with a bracketed minimum, found {len(used)}"
            + (f" ({reasons})" if reasons else "")
        )
    flops = np.array([b["flops"] for b in used])
    a, k_n = _power_law(flops, np.array([b["n_opt"] for b in used]))
    b, k_d = _power_law(flops, np.array([b["d_opt"] for b in used]))
    return Approach2Result(
        a=a,
        b=b,
        k_n=k_n,
        k_d=k_d,
        curve=config.curve,
        n_budgets=len(used),
        n_points=int(sum(b["n_points"] for b in used)),
        budgets=budgets,
        min_sizes=config.min_sizes,
    )


def profile_residuals(table: pd.DataFrame, config: Approach2Config) -> tuple[np.ndarray, np.ndarray]:
    """Each row's loss on its slice's profile, and the leverage-adjusted residuals r/√(1−h) of every fitted slice
    (Davison & Hinkley 1997, eq. 6.9: raw residuals of a least-squares fit are too small by that factor)."""
    labels = assign_budgets(table["flops"].to_numpy(), config.budget_rtol)
    loss = table["loss"].to_numpy(dtype=float)
    fitted, residuals = loss.copy(), []
    for flops in np.unique(labels):
        rows = labels == flops
        log_n = np.log(table["n_params"].to_numpy(dtype=float)[rows])
        if len(np.unique(log_n)) < config.min_sizes:
            continue  # not fitted (too few sizes): the slice is excluded from every resample's fit too
        design = np.vander(log_n - log_n.mean(), CURVES[config.curve] + 1)
        coef, *_ = np.linalg.lstsq(design, loss[rows], rcond=None)
        leverage = np.einsum("ij,ji->i", design, np.linalg.pinv(design))
        fitted[rows] = design @ coef
        residuals.append((loss[rows] - fitted[rows]) / np.sqrt(np.clip(1.0 - leverage, 1e-12, None)))
    return fitted, np.concatenate(residuals) if residuals else np.zeros(0)


def _sample(table: pd.DataFrame, config: Approach2Config) -> dict[str, float] | None:
    try:
        result = _fit(table, config)
    except FitError:
        return None
    return {"a": result.a, "b": result.b, "k_n": result.k_n, "k_d": result.k_d}


def fit_approach2(
    table: pd.DataFrame, config: Approach2Config | None = None, bootstrap_config: BootstrapConfig | None = None
) -> Approach2Result:
    """Fit approach 2 to a fit table; bootstrap by refitting residual resamples. FitError when it cannot run."""
    config = config or Approach2Config()
    result = _fit(table, config)
    if bootstrap_config is None or bootstrap_config.n_resamples == 0:
        return result
    fitted, residuals = profile_residuals(table, config)
    resamples = bootstrap.residual_resamples(table, fitted, residuals, bootstrap_config)
    raw = bootstrap.run(_sample, table, bootstrap_config, {"config": config}, resamples=resamples)
    samples = [s for s in raw if s is not None]
    if not samples:
        return replace(result, n_bootstrap_failed=len(raw))
    ci = bootstrap.intervals(samples, ("a", "b", "k_n", "k_d"), bootstrap_config.level)
    return replace(result, ci95=ci, n_bootstrap_failed=len(raw) - len(samples), bootstrap_samples=samples)
