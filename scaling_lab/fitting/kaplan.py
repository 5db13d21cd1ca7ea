"""Kaplan-style single-variable laws, each a power law with an irreducible term: L(X) = E + A / X^alpha.

Kaplan et al. 2020, §3 (eqs. 1.1-1.3 use pure power laws; Henighan et al. 2020 add the irreducible term):
- L(N) from runs not limited by data: for each size, its lowest loss (its largest D);
- L(D) from runs not limited by size: for each D (within ``d_rtol``), the lowest loss over sizes;
- L(C) from the compute frontier: points with a lower loss than every point of smaller or equal C.
Each is fitted with the same log-space Huber objective as approach 3 (objectives.py), from a start grid.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from scaling_lab.errors import ConfigError, FitError
from scaling_lab.fitting import bootstrap
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.objectives import OBJECTIVES, fit_power_law_sum
from scaling_lab.fitting.seeds import assign_budgets

LAWS = ("L_N", "L_D", "L_C")
"""The three laws, keyed by what they depend on."""
PARAMS = ("E", "A", "alpha")


def start_grid() -> np.ndarray:
    """Starts (e, a, alpha): the approach-3 grid's values for one variable (Hoffmann et al. 2022, App. D.2)."""
    grid = itertools.product(np.arange(-1.0, 1.01, 0.5), np.arange(0.0, 25.01, 5.0), np.arange(0.0, 2.01, 0.5))
    return np.array(list(grid), dtype=float)


@dataclass(frozen=True, kw_only=True)
class KaplanConfig:
    """How the Kaplan laws are fitted."""

    objective: str = "huber"
    """Objective on log-loss residuals, as approach 3."""
    delta: float = 1e-3
    """Huber δ."""
    n_polish: int = 3
    """Best-screened starts polished per law (three parameters, 150 starts: a few suffice)."""
    min_points: int = 4
    """A law needs at least this many points (three parameters and one to spare)."""
    d_rtol: float = 0.05
    """Token counts closer than this (relative) count as one D for L(D)."""

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"kaplan.objective={self.objective!r} is unknown: choose one of {', '.join(OBJECTIVES)}")
        if self.min_points < 4:
            raise ConfigError(f"kaplan.min_points={self.min_points}: use at least 4 (three parameters)")


def law_points(table: pd.DataFrame, d_rtol: float) -> dict[str, pd.DataFrame]:
    """The (x, loss) points each law is fitted to (module docstring)."""
    by_size = table.loc[table.groupby("n_params")["loss"].idxmin()]
    d_label = assign_budgets(table["n_tokens"].to_numpy(), d_rtol)
    by_tokens = table.assign(d_label=d_label).loc[lambda t: t.groupby("d_label")["loss"].idxmin()]
    ordered = table.sort_values(["flops", "loss"])
    frontier = ordered[ordered["loss"] < ordered["loss"].cummin().shift(fill_value=np.inf)]
    return {
        "L_N": pd.DataFrame({"x": by_size["n_params"].to_numpy(), "loss": by_size["loss"].to_numpy()}),
        "L_D": pd.DataFrame({"x": by_tokens["d_label"].to_numpy(), "loss": by_tokens["loss"].to_numpy()}),
        "L_C": pd.DataFrame({"x": frontier["flops"].to_numpy(), "loss": frontier["loss"].to_numpy()}),
    }


def fit_law(points: pd.DataFrame, config: KaplanConfig) -> dict[str, float]:
    """Fit L(x) = E + A / x^alpha; returns E, A, alpha, n_points, objective_value, n_converged."""
    if len(points) < config.min_points:
        raise FitError(f"needs at least {config.min_points} points, has {len(points)}")
    polished = fit_power_law_sum(
        np.log(points["x"].to_numpy(float))[None, :],
        np.log(points["loss"].to_numpy(float)),
        start_grid(),
        objective=config.objective,
        delta=config.delta,
        n_polish=config.n_polish,
    )
    e, a, alpha = polished.theta
    return {
        "E": float(np.exp(e)),
        "A": float(np.exp(a)),
        "alpha": float(alpha),
        "n_points": len(points),
        "objective_value": polished.value,
        "n_converged": polished.n_converged,
        "n_polished": polished.n_polished,
    }


@dataclass(frozen=True, kw_only=True)
class KaplanResult:
    """L(N), L(D), L(C), each E + A / X^alpha; a law that could not be fitted carries its reason."""

    laws: dict[str, dict[str, Any]]
    """Per law (L_N, L_D, L_C): E, A, alpha, n_points, objective_value, … or {"skipped": reason}."""
    objective: str
    """Objective on log-loss residuals."""
    ci95: dict[str, dict[str, list[float]]] | None = None
    """Per law, percentile intervals of E, A, alpha; None without a bootstrap."""

    def to_dict(self) -> dict[str, Any]:
        """fit.json's ``kaplan`` object."""
        out: dict[str, Any] = {**self.laws, "objective": self.objective}
        if self.ci95 is not None:
            out["ci95"] = self.ci95
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> KaplanResult:
        return cls(
            laws={k: values[k] for k in LAWS if k in values}, objective=values["objective"], ci95=values.get("ci95")
        )


def _fit_all(table: pd.DataFrame, config: KaplanConfig) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, points in law_points(table, config.d_rtol).items():
        try:
            out[name] = fit_law(points, config)
        except FitError as error:
            out[name] = {"skipped": f"{name} {error}"}
    return out


def _sample(table: pd.DataFrame, config: KaplanConfig) -> dict[str, float] | None:
    laws = _fit_all(table, config)
    return {f"{law}.{p}": laws[law].get(p, np.nan) for law in LAWS for p in PARAMS}


def fit_kaplan(
    table: pd.DataFrame,
    config: KaplanConfig | None = None,
    bootstrap_config: BootstrapConfig | None = None,
    resamples: list[pd.DataFrame] | None = None,
) -> KaplanResult:
    """Fit L(N), L(D), L(C); FitError only when none of the three can be fitted."""
    config = config or KaplanConfig()
    laws = _fit_all(table, config)
    if all("skipped" in law for law in laws.values()):
        raise FitError("kaplan: " + "; ".join(law["skipped"] for law in laws.values()))
    result = KaplanResult(laws=laws, objective=config.objective)
    if bootstrap_config is None or bootstrap_config.n_resamples == 0:
        return result
    raw = bootstrap.run(_sample, table, bootstrap_config, {"config": config}, resamples=resamples)
    samples = [s for s in raw if s is not None]
    flat = bootstrap.intervals(samples, [f"{law}.{p}" for law in LAWS for p in PARAMS], bootstrap_config.level)
    ci = {law: {p: flat[f"{law}.{p}"] for p in PARAMS} for law in LAWS if "skipped" not in laws[law]}
    return replace(result, ci95=ci)
