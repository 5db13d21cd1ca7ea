"""Chinchilla approach 2: per isoFLOP budget, fit loss against log N and take the minimum; then N_opt ∝ C^a.

Hoffmann et al. 2022, §3.2: a parabola per isoFLOP profile, minima fitted as power laws of C. The parabola is
biased when the profile is asymmetric (Besiroglu et al. 2024; Czech et al. 2026 trace the bias to the grid's width,
off-centre sampling and α ≠ β), so two more flexible profiles are offered: a cubic, and Akima interpolation as in
Porian et al. 2024 (below). A minimum outside the sampled sizes (or a profile that is not convex there) is not
bracketed: the budget is reported and excluded from the power-law fit.

The polynomial profiles' bootstrap keeps the design (the sizes of every slice) and resamples the profiles'
residuals: drawing rows instead dropped sizes from 5-size slices, lost the bracket in ~80 % of resamples of the CPU
quickstart, and conditioned the interval on the resamples that survived.

Akima profiles (Porian et al. 2024, §2 and their reference code): per slice, log loss is interpolated against
log N with Akima's piecewise cubic (it passes through every point, so it has no residuals to resample) and N* is the
minimum on a grid of 25 points per interval between sampled sizes. Its uncertainty comes from a seed-noise bootstrap:
every loss gets Gaussian noise whose standard deviation depends on the loss (``seed_noise_std`` at
``seed_noise_loss``, log-log interpolated), the interpolant's minimum is found again, and the standard deviation
of log N* over the copies — floored at a third of the mean log-spacing of the sampled sizes and inflated by the
share of copies whose minimum fell on an edge — weights a least-squares fit of log N* on log C by 1/std². A slice
whose copies put the minimum on an edge more than half of the time is excluded. Two choices differ from the
reference code: the observation is the minimum of the data's own interpolant (the code's default takes the median
of the noisy minima, which is pulled toward the centre of the sampled sizes when edge minima are dropped), and the
noise is interpolated between the two configured points for every loss (the code compares log loss with the
untransformed thresholds, so it uses the low value for every loss below e^3).

With measured seeds (several per point) every profile's bootstrap instead redraws each point's seeds, which also
keeps the design: measured seed noise replaces the residuals and the configured noise model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.interpolate import Akima1DInterpolator

from scaling_lab.errors import ConfigError, FitError
from scaling_lab.fitting import bootstrap
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.estimate import Estimate, estimates_from_samples, estimates_of, intervals_of
from scaling_lab.fitting.laws import FRONTIER_ESTIMATES, FittedFrontier
from scaling_lab.fitting.seeds import assign_budgets

POLYNOMIAL_DEGREES = {"parabola": 2, "cubic": 3}
"""Polynomial profile models and their degree in log N."""
CURVES = (*POLYNOMIAL_DEGREES, "akima")
"""Every profile model."""
MIN_SIZES = {"parabola": 3, "cubic": 4, "akima": 3}
"""Fewest sizes a slice needs: degree + 1 for a polynomial; 3 for an interior minimum of an interpolant."""

AKIMA_GRID_PER_INTERVAL = 25
"""Grid points per interval between sampled sizes for the interpolant's minimum (Porian et al. 2024's code)."""
AKIMA_MIN_STD_FRACTION = 0.33
"""Floor of a slice's std of log N*, as a fraction of the mean log-spacing of its sizes (Porian et al. 2024's
code: 0.33 × 25 grid steps): a noise model that moves no minimum must not give a slice infinite weight."""
AKIMA_WEIGHTS_SEED = 0
"""Seed of the noise copies that weight the point estimate: fixed, so the estimate does not change with the
bootstrap's seed or count."""


@dataclass(frozen=True, kw_only=True)
class Approach2Config:
    """How approach 2 fits."""

    curve: str = "parabola"
    """Profile model per budget: ``parabola`` (Chinchilla), ``cubic``, or ``akima`` (Porian et al. 2024)."""
    budget_rtol: float = 0.05
    """Points whose C differ by less than this relative amount share a budget."""
    min_sizes: int = 5
    """Budgets with fewer distinct model sizes are excluded (a parabola needs 3; 5 leaves some to spare)."""
    min_budgets: int = 3
    """Skip approach 2 with fewer usable (bracketed) budgets than this."""
    seed_noise_std: tuple[float, float] = (0.002, 0.05)
    """akima: seed-to-seed standard deviation of the loss (loss units) at the two losses of ``seed_noise_loss``;
    Porian et al. 2024's values for RefinedWeb. Set it to the spread you measured between seeds."""
    seed_noise_loss: tuple[float, float] = (3.0, 7.0)
    """akima: the losses at which ``seed_noise_std`` holds; log-log interpolated between, constant outside."""
    seed_noise_resamples: int = 1000
    """akima: noise copies per slice behind each minimum's standard deviation (Porian et al. 2024: 1000)."""

    def __post_init__(self) -> None:
        if self.curve not in CURVES:
            raise ConfigError(f"approach2.curve={self.curve!r} is unknown: choose one of {', '.join(CURVES)}")
        if self.min_sizes < MIN_SIZES[self.curve]:
            raise ConfigError(
                f"approach2.min_sizes={self.min_sizes} cannot fit a {self.curve}: use at least {MIN_SIZES[self.curve]}"
            )
        if self.min_budgets < 2:
            raise ConfigError(f"approach2.min_budgets={self.min_budgets}: a power law needs at least 2")
        if not 0 < self.budget_rtol < 1:
            raise ConfigError(f"approach2.budget_rtol={self.budget_rtol} must be in (0, 1), for example 0.05")
        for name, example in (("seed_noise_std", "[0.002, 0.05]"), ("seed_noise_loss", "[3.0, 7.0]")):
            pair = getattr(self, name)
            if not _positive_pair(pair):
                raise ConfigError(f"approach2.{name}={pair!r} must be two positive numbers, for example {example}")
            object.__setattr__(self, name, (float(pair[0]), float(pair[1])))
        if not self.seed_noise_loss[0] < self.seed_noise_loss[1]:
            raise ConfigError(
                f"approach2.seed_noise_loss={list(self.seed_noise_loss)} must be increasing, for example [3.0, 7.0]"
            )
        if not _whole(self.seed_noise_resamples) or self.seed_noise_resamples < 20:
            raise ConfigError(
                f"approach2.seed_noise_resamples={self.seed_noise_resamples!r} must be a whole number of at least 20 "
                "(copies behind a standard deviation), for example 1000"
            )


def _positive_pair(value: Any) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in value)
    )


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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


def seed_noise_std(loss: np.ndarray, config: Approach2Config) -> np.ndarray:
    """Seed-to-seed standard deviation of each loss (Porian et al. 2024): ``seed_noise_std`` at the losses
    ``seed_noise_loss``, log-log interpolated between them and constant outside."""
    log_std = np.interp(np.log(loss), np.log(config.seed_noise_loss), np.log(config.seed_noise_std))
    return np.exp(log_std)


def akima_minimum(log_x: np.ndarray, log_loss: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum of the Akima interpolant of log loss against log x, on a grid of 25 points per interval.

    ``log_x`` (k,) increasing; ``log_loss`` (k,) or (k, m) for m profiles at once. Returns (log x at the minimum,
    log loss there, bracketed) with the shape of one row of ``log_loss``; bracketed means not on an end of the grid.
    """
    grid = np.linspace(log_x[0], log_x[-1], (len(log_x) - 1) * AKIMA_GRID_PER_INTERVAL)
    values = Akima1DInterpolator(log_x, log_loss, axis=0)(grid)  # (grid,) or (grid, m)
    index = np.argmin(values, axis=0)
    bracketed = (index > 0) & (index < len(grid) - 1)
    return grid[index], np.min(values, axis=0), bracketed


def size_profile(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One slice's (log N, log D, mean loss, points) per distinct size, by increasing N (seeds averaged). A row of a
    seed-averaged table (``n_seeds`` column, fitting/seeds.py) counts as its seeds."""
    seeds = rows["n_seeds"].to_numpy(float) if "n_seeds" in rows.columns else np.ones(len(rows))
    grouped = (
        rows.assign(log_d=np.log(rows["n_tokens"].to_numpy(float)), seeds=seeds, weighted=seeds * rows["loss"])
        .groupby("n_params", sort=True)
        .agg(weighted=("weighted", "sum"), log_d=("log_d", "mean"), points=("seeds", "sum"))
    )
    grouped["loss"] = grouped["weighted"] / grouped["points"]
    return (
        np.log(grouped.index.to_numpy(float)),
        grouped["log_d"].to_numpy(),
        grouped["loss"].to_numpy(float),
        grouped["points"].to_numpy(),
    )


def _akima_minima(log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray) -> tuple[np.ndarray, ...]:
    """(log N*, log D*, log loss at N*, bracketed in both) of one slice's profile(s), rows by increasing N. D mostly
    decreases along a slice, but C within ``budget_rtol`` can reorder it or give two sizes one D (averaged)."""
    n_at, value, n_ok = akima_minimum(log_n, log_loss)
    unique_d, which = np.unique(log_d, return_inverse=True)
    d_loss = np.zeros((len(unique_d), *log_loss.shape[1:]))
    np.add.at(d_loss, which, log_loss)
    d_loss /= np.bincount(which).reshape(-1, *([1] * (log_loss.ndim - 1)))
    d_at, _, d_ok = akima_minimum(unique_d, d_loss)
    return n_at, d_at, value, n_ok & d_ok


def _noisy_minima(
    profile: tuple[np.ndarray, ...], config: Approach2Config, copies: int, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """Minima of ``copies`` profiles whose losses carry seed noise (a mean of m seeds has 1/√m of it)."""
    log_n, log_d, loss, points = profile
    sigma = seed_noise_std(loss, config) / np.sqrt(points)
    noisy = loss[:, None] + sigma[:, None] * rng.standard_normal((len(loss), copies))
    return _akima_minima(log_n, log_d, np.log(np.maximum(noisy, 1e-12)))


def _minimum_std(log_at: np.ndarray, bracketed: np.ndarray, log_x: np.ndarray) -> float:
    """Porian et al. 2024's std of a slice's log minimum over noise copies: floored, inflated by the edge share."""
    floor = AKIMA_MIN_STD_FRACTION * (log_x.max() - log_x.min()) / (len(log_x) - 1)
    return float(max(np.std(log_at[bracketed]), floor) / bracketed.mean())


@dataclass(frozen=True, kw_only=True)
class BudgetSlice:
    """One isoFLOP budget of approach 2: its profile's minimum, and whether the power-law fits used it."""

    flops: float
    """The budget C (geometric mean of its points' C)."""
    n_sizes: int
    """Distinct model sizes in the slice."""
    n_points: int
    """Rows in the slice."""
    n_opt: float | None = None
    """N at the profile's minimum; None when the slice had too few sizes to be fitted."""
    d_opt: float | None = None
    """D at the profile's minimum."""
    loss_opt: float | None = None
    """Loss at the profile's minimum."""
    bracketed: bool = False
    """Whether the minimum lies strictly inside the sampled sizes."""
    log_n_opt_std: float | None = None
    """Akima profiles: the seed-noise standard deviation of log N_opt that weights the power-law fit."""
    log_d_opt_std: float | None = None
    """Akima profiles: likewise for log D_opt."""
    used: bool = False
    """Whether the power-law fits used this budget."""
    reason: str = ""
    """Why not, when not."""

    def to_dict(self) -> dict[str, Any]:
        """One row of fit.json's ``approach2.budgets`` (fields that do not apply left out)."""
        return {name: value for name, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> BudgetSlice:
        return cls(**{name: values[name] for name in cls.__dataclass_fields__ if name in values})

    @property
    def fitted(self) -> bool:
        """Whether a profile was fitted (enough sizes), so that n_opt, d_opt and loss_opt are set."""
        return self.n_opt is not None


@dataclass(frozen=True, kw_only=True)
class Approach2Result(FittedFrontier):
    """N_opt(C) = k_n C^a and D_opt(C) = k_d C^b from per-budget minima."""

    a: Estimate
    """Exponent of N_opt ∝ C^a."""
    b: Estimate
    """Exponent of D_opt ∝ C^b."""
    k_n: Estimate
    """N_opt(C) = k_n · C^a."""
    k_d: Estimate
    """D_opt(C) = k_d · C^b."""
    curve: str
    """Profile model used per budget."""
    n_budgets: int
    """Budgets used in the power-law fits (bracketed, enough sizes)."""
    n_points: int
    """Points in those budgets."""
    budgets: tuple[BudgetSlice, ...]
    """Every budget, used or not, by increasing C."""
    min_sizes: int = 5
    """Sizes a budget needed to be fitted."""
    n_bootstrap_failed: int = 0
    """Resamples whose fit failed."""
    bootstrap_samples: list[dict[str, float]] | None = None
    """Per resample {a, b, k_n, k_d} (for bands in figures); None without a bootstrap."""
    seed_noise: dict[str, Any] | None = None
    """Akima profiles: the seed-noise model {std, loss, resamples} behind the weights and the bootstrap."""
    resampling: str | None = None
    """What the bootstrap redrew (``seed``, ``seed_noise`` or ``residual``); None without a bootstrap."""

    def to_dict(self) -> dict[str, Any]:
        """fit.json's ``approach2`` object."""
        out: dict[str, Any] = self.frontier_values()
        out.update(curve=self.curve, n_budgets=self.n_budgets, n_points=self.n_points, min_sizes=self.min_sizes,
                   budgets=[budget.to_dict() for budget in self.budgets])  # fmt: skip
        if self.seed_noise is not None:
            out["seed_noise"] = self.seed_noise
        intervals = intervals_of(self.frontier_estimates())
        if intervals is not None:
            out["ci95"] = intervals
            out["bootstrap_samples"] = self.bootstrap_samples
        out["n_bootstrap_failed"] = self.n_bootstrap_failed  # all failed → no ci95, and this says why
        return out

    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any], level: float | None = None, bootstrap_by: str | None = None
    ) -> Approach2Result:
        """fit.json's ``approach2`` object; its intervals at ``level`` (the fit's ``bootstrap.level``, else 0.95: the
        only level before it was configurable). What the bootstrap redrew follows from the fit's resolved
        ``bootstrap.by`` (``bootstrap_by``) and the profile, as :func:`fit_approach2` chose it."""
        level = (0.95 if level is None else level) if "ci95" in values else None
        if level is not None and "resampling" not in values:
            values = {**values, "resampling": _resampling(bootstrap_by, values.get("seed_noise"))}
        simple = ("curve", "n_budgets", "n_points", "min_sizes", "n_bootstrap_failed", "bootstrap_samples",
                  "seed_noise", "resampling")  # fmt: skip
        return cls(
            **estimates_of(values, FRONTIER_ESTIMATES, values.get("ci95"), level),
            budgets=tuple(BudgetSlice.from_dict(budget) for budget in values["budgets"]),
            **{name: values[name] for name in simple if name in values},
        )

    def report(self) -> str:
        """The report's section for approach 2."""
        lines = [
            f"[[Approach 2: per-budget {self.curve} minima, N_opt ∝ C^a]]",
            f"    budgets      = {self.n_budgets} used of {len(self.budgets)}",
            f"    a            = {self.a.value:.6g}{self.a.interval_text()}",
            f"    b            = {self.b.value:.6g}{self.b.interval_text()}",
        ]
        if self.seed_noise is not None:
            noise = self.seed_noise
            lines.append(
                f"    seed noise   = std {noise['std'][0]:g} at loss {noise['loss'][0]:g} to {noise['std'][1]:g} at "
                f"{noise['loss'][1]:g}, {noise['resamples']} copies per slice; fits weighted by 1/std(log N*)²"
            )
        if self.a.level is not None:
            lines.append(f"    bootstrap    = {RESAMPLING[self.resampling]}")
        for budget in self.budgets:
            if budget.fitted:
                state = "used" if budget.used else f"excluded: {budget.reason}"
                lines.append(f"      C={budget.flops:.3g}  sizes={budget.n_sizes}  N_opt={budget.n_opt:.4g}  {state}")
        few = sum(not budget.fitted for budget in self.budgets)
        if few:
            lines.append(f"      {few} budget(s) excluded for too few sizes (< {self.min_sizes})")
        if self.n_bootstrap_failed:
            lines.append(f"    bootstrap    = {self.n_bootstrap_failed} resamples failed (a slice lost its bracket)")
        return "\n".join(lines)


def _resampling(bootstrap_by: str | None, seed_noise: Any) -> str:
    """What :func:`fit_approach2`'s bootstrap redrew, given the fit's resolved ``bootstrap.by``."""
    if bootstrap_by == "seed":
        return "seed"
    return "seed_noise" if seed_noise is not None else "residual"


RESAMPLING = {
    "seed": "seeds within each point resampled, sizes kept (fixed design)",
    "seed_noise": "seed noise added to the losses, minima found again (Porian et al. 2024)",
    "residual": "profile residuals resampled, sizes kept (fixed design)",
}
"""What approach 2's bootstrap redrew, as the report says it."""


def _power_law(flops: np.ndarray, values: np.ndarray, log_std: np.ndarray | None = None) -> tuple[float, float]:
    """Least squares of log value on log C, weighted by 1/log_std² when given: returns (exponent, coefficient)."""
    weights = None if log_std is None else 1.0 / np.asarray(log_std)
    slope, intercept = np.polyfit(np.log(flops), np.log(values), 1, w=weights)
    return float(slope), float(np.exp(intercept))


def isoflop_slices(table: pd.DataFrame, config: Approach2Config) -> list[tuple[float, pd.DataFrame]]:
    """(budget C, its rows) for every budget, by increasing C."""
    labels = assign_budgets(table["flops"].to_numpy(), config.budget_rtol)
    return [(float(flops), table[labels == flops]) for flops in np.unique(labels)]


def _polynomial_budget(rows: pd.DataFrame, config: Approach2Config) -> dict[str, Any]:
    degree = POLYNOMIAL_DEGREES[config.curve]
    loss = rows["loss"].to_numpy()
    log_n, loss_opt, bracketed_n = profile_minimum(np.log(rows["n_params"].to_numpy()), loss, degree)
    log_d, _, bracketed_d = profile_minimum(np.log(rows["n_tokens"].to_numpy()), loss, degree)
    bracketed = bracketed_n and bracketed_d
    return {
        "n_opt": float(np.exp(log_n)),
        "d_opt": float(np.exp(log_d)),
        "loss_opt": loss_opt,
        "bracketed": bracketed,
        "used": bracketed,
        "reason": "" if bracketed else "minimum not bracketed by the sampled sizes",
    }


def _akima_budget(rows: pd.DataFrame, config: Approach2Config, rng: np.random.Generator) -> dict[str, Any]:
    profile = size_profile(rows)
    log_n, log_d, loss, _ = profile
    n_at, d_at, value, bracketed = _akima_minima(log_n, log_d, np.log(loss))
    entry: dict[str, Any] = {
        "n_opt": float(np.exp(n_at)),
        "d_opt": float(np.exp(d_at)),
        "loss_opt": float(np.exp(value)),
        "bracketed": bool(bracketed),
    }
    noisy_n, noisy_d, _, noisy_ok = _noisy_minima(profile, config, config.seed_noise_resamples, rng)
    if not bracketed:
        return {**entry, "used": False, "reason": "minimum not bracketed by the sampled sizes"}
    if noisy_ok.mean() < 0.5:
        reason = (
            f"with seed noise the minimum fell on an end of the sampled sizes in {1 - noisy_ok.mean():.0%} of "
            f"{config.seed_noise_resamples} copies (more than half)"
        )
        return {**entry, "used": False, "reason": reason}
    entry["log_n_opt_std"] = _minimum_std(noisy_n, noisy_ok, log_n)
    entry["log_d_opt_std"] = _minimum_std(noisy_d, noisy_ok, log_d)
    return {**entry, "used": True, "reason": ""}


def _budgets(table: pd.DataFrame, config: Approach2Config) -> list[BudgetSlice]:
    rng = np.random.default_rng(AKIMA_WEIGHTS_SEED)
    out = []
    for flops, rows in isoflop_slices(table, config):
        n_sizes = int(rows["n_params"].nunique())
        entry: dict[str, Any] = {"flops": flops, "n_sizes": n_sizes, "n_points": len(rows)}
        if n_sizes < config.min_sizes:
            out.append(
                BudgetSlice(**entry, bracketed=False, used=False, reason=f"{n_sizes} sizes < {config.min_sizes}")
            )
        elif config.curve == "akima":
            out.append(BudgetSlice(**entry, **_akima_budget(rows, config, rng)))
        else:
            out.append(BudgetSlice(**entry, **_polynomial_budget(rows, config)))
    return out


def _fit(table: pd.DataFrame, config: Approach2Config) -> Approach2Result:
    budgets = _budgets(table, config)
    used = [b for b in budgets if b.used]
    if len(used) < config.min_budgets:
        reasons = "; ".join(f"C={b.flops:.3g}: {b.reason}" for b in budgets if not b.used)
        raise FitError(
            f"approach2 needs {config.min_budgets} budgets with a bracketed minimum, found {len(used)}"
            + (f" ({reasons})" if reasons else "")
        )
    flops = np.array([b.flops for b in used])
    weighted = config.curve == "akima"
    n_std = np.array([b.log_n_opt_std for b in used]) if weighted else None
    d_std = np.array([b.log_d_opt_std for b in used]) if weighted else None
    a, k_n = _power_law(flops, np.array([b.n_opt for b in used]), n_std)
    b, k_d = _power_law(flops, np.array([b.d_opt for b in used]), d_std)
    seed_noise = None
    if weighted:
        seed_noise = {
            "std": list(config.seed_noise_std),
            "loss": list(config.seed_noise_loss),
            "resamples": config.seed_noise_resamples,
        }
    return Approach2Result(
        **estimates_from_samples({"a": a, "b": b, "k_n": k_n, "k_d": k_d}, None, FRONTIER_ESTIMATES, None),
        curve=config.curve,
        n_budgets=len(used),
        n_points=int(sum(b.n_points for b in used)),
        budgets=tuple(budgets),
        min_sizes=config.min_sizes,
        seed_noise=seed_noise,
    )


def profile_residuals(table: pd.DataFrame, config: Approach2Config) -> tuple[np.ndarray, np.ndarray]:
    """Each row's loss on its slice's polynomial profile, and the leverage-adjusted residuals r/√(1−h) of every fitted
    slice (Davison & Hinkley 1997, eq. 6.9: raw residuals of a least-squares fit are too small by that factor)."""
    labels = assign_budgets(table["flops"].to_numpy(), config.budget_rtol)
    loss = table["loss"].to_numpy(dtype=float)
    fitted, residuals = loss.copy(), []
    for flops in np.unique(labels):
        rows = labels == flops
        log_n = np.log(table["n_params"].to_numpy(dtype=float)[rows])
        if len(np.unique(log_n)) < config.min_sizes:
            continue  # not fitted (too few sizes): the slice is excluded from every resample's fit too
        design = np.vander(log_n - log_n.mean(), POLYNOMIAL_DEGREES[config.curve] + 1)
        coef, *_ = np.linalg.lstsq(design, loss[rows], rcond=None)
        leverage = np.einsum("ij,ji->i", design, np.linalg.pinv(design))
        fitted[rows] = design @ coef
        residuals.append((loss[rows] - fitted[rows]) / np.sqrt(np.clip(1.0 - leverage, 1e-12, None)))
    return fitted, np.concatenate(residuals) if residuals else np.zeros(0)


def profile_curve(log_x: np.ndarray, loss: np.ndarray, curve: str) -> Callable[[np.ndarray], np.ndarray]:
    """One slice's fitted profile, loss as a function of log x (for figures)."""
    if curve == "akima":
        means = pd.Series(np.asarray(loss, dtype=float)).groupby(np.asarray(log_x, dtype=float)).mean()
        interpolant = Akima1DInterpolator(means.index.to_numpy(), np.log(means.to_numpy()), extrapolate=True)
        return lambda at: np.exp(interpolant(at))
    return np.polynomial.Polynomial.fit(log_x, loss, POLYNOMIAL_DEGREES[curve])


def _sample(table: pd.DataFrame, config: Approach2Config) -> dict[str, float] | None:
    try:
        result = _fit(table, config)
    except FitError:
        return None
    return result.frontier_values()


def seed_noise_bootstrap(
    table: pd.DataFrame, result: Approach2Result, config: Approach2Config, bootstrap_config: BootstrapConfig
) -> list[dict[str, float] | None]:
    """Akima profiles: per resample, every used slice's minimum with fresh seed noise on its losses (resample r is
    the r-th noise copy of every slice), refitted with the point estimate's weights; a slice whose copy has its
    minimum on an end drops out, and a resample left with fewer than ``min_budgets`` slices fails (None)."""
    rng = np.random.default_rng(bootstrap_config.seed)
    used = {b.flops: b for b in result.budgets if b.used}
    flops, log_n, log_d, ok = [], [], [], []
    for budget_flops, rows in isoflop_slices(table, config):
        if budget_flops in used:
            n_at, d_at, _, bracketed = _noisy_minima(size_profile(rows), config, bootstrap_config.n_resamples, rng)
            flops.append(budget_flops)
            log_n.append(n_at)
            log_d.append(d_at)
            ok.append(bracketed)
    n_std = np.array([used[c].log_n_opt_std for c in flops])
    d_std = np.array([used[c].log_d_opt_std for c in flops])
    flops_array, n_opt, d_opt, kept = np.array(flops), np.exp(np.array(log_n)), np.exp(np.array(log_d)), np.array(ok)
    samples: list[dict[str, float] | None] = []
    for r in range(bootstrap_config.n_resamples):
        keep = kept[:, r]
        if keep.sum() < config.min_budgets:
            samples.append(None)
            continue
        a, k_n = _power_law(flops_array[keep], n_opt[keep, r], n_std[keep])
        b, k_d = _power_law(flops_array[keep], d_opt[keep, r], d_std[keep])
        samples.append({"a": a, "b": b, "k_n": k_n, "k_d": k_d})
    return samples


def fit_approach2(
    table: pd.DataFrame,
    config: Approach2Config | None = None,
    bootstrap_config: BootstrapConfig | None = None,
    resamples: list[pd.DataFrame] | None = None,
) -> Approach2Result:
    """Fit approach 2 to a fit table; FitError when it cannot run. The bootstrap refits ``resamples`` when given
    (each point's measured seeds redrawn), else seed resamples when ``bootstrap.by`` resolves to ``seed`` (several
    seeds per point), else residual resamples (polynomial profiles) or seed-noise copies (Akima profiles)."""
    config = config or Approach2Config()
    result = _fit(table, config)
    if bootstrap_config is None or bootstrap_config.n_resamples == 0:
        return result
    if resamples is None and bootstrap.resolve_by(table, bootstrap_config.by) == "seed":
        resamples = bootstrap.seed_resamples(table, bootstrap_config)
    if resamples is not None:
        resampling = "seed"
        raw = bootstrap.run(_sample, table, bootstrap_config, {"config": config}, resamples=resamples)
    elif config.curve == "akima":
        resampling = "seed_noise"
        raw = seed_noise_bootstrap(table, result, config, bootstrap_config)
    else:
        resampling = "residual"
        fitted, residuals = profile_residuals(table, config)
        resamples = bootstrap.residual_resamples(table, fitted, residuals, bootstrap_config)
        raw = bootstrap.run(_sample, table, bootstrap_config, {"config": config}, resamples=resamples)
    samples = [s for s in raw if s is not None]
    if not samples:
        return replace(result, n_bootstrap_failed=len(raw))
    point = result.frontier_values()
    return replace(
        result,
        **estimates_from_samples(point, samples, FRONTIER_ESTIMATES, bootstrap_config.level),
        n_bootstrap_failed=len(raw) - len(samples),
        bootstrap_samples=samples,
        resampling=resampling,
    )
