"""Kaplan-style single-variable laws, each a power law with an irreducible term: L(X) = E + A / X^alpha.

Kaplan et al. 2020, §3 (eqs. 1.1-1.3 use pure power laws; Henighan et al. 2020 add the irreducible term):
- L(N) from runs not limited by data: for each size, its lowest loss (its largest D);
- L(D) from runs not limited by size: for each D (within ``d_rtol``), the lowest loss over sizes;
- L(C) from the compute frontier: points with a lower loss than every point of smaller or equal C.
Each is fitted with the same log-space Huber objective as approach 3 (objectives.py), from a start grid.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from scaling_lab.errors import ConfigError, FitError
from scaling_lab.fitting import bootstrap
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.estimate import Estimate, estimates_from_samples, estimates_of, intervals_of
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


@dataclass(frozen=True, kw_only=True)
class KaplanLawFit:
    """One fitted L(X) = E + A / X^alpha."""

    E: Estimate
    """Irreducible loss."""
    A: Estimate
    """Coefficient."""
    alpha: Estimate
    """Exponent of X."""
    n_points: int
    """Points fitted."""
    objective_value: float
    """Objective at the optimum."""
    n_converged: int
    """Polished starts that converged."""
    n_polished: int
    """Starts polished."""

    def to_dict(self) -> dict[str, Any]:
        """One law of fit.json's ``kaplan`` object (its intervals live in ``kaplan.ci95``)."""
        return {**{name: getattr(self, name).value for name in PARAMS}, "n_points": self.n_points,
                "objective_value": self.objective_value, "n_converged": self.n_converged,
                "n_polished": self.n_polished}  # fmt: skip

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], intervals: Mapping[str, Any] | None, level: float | None
                  ) -> KaplanLawFit:  # fmt: skip
        counts = {name: values[name] for name in ("n_points", "objective_value", "n_converged", "n_polished")}
        return cls(**estimates_of(values, PARAMS, intervals, level), **counts)

    def line(self, name: str) -> str:
        """The report's line for this law."""
        return (
            f"    {name}: E={self.E.value:.5g}{self.E.interval_text()}  A={self.A.value:.5g}  "
            f"alpha={self.alpha.value:.5g}{self.alpha.interval_text()}  ({self.n_points} points)"
        )


def fit_law(points: pd.DataFrame, config: KaplanConfig) -> KaplanLawFit:
    """Fit L(x) = E + A / x^alpha to (x, loss) points."""
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
    return KaplanLawFit(
        E=Estimate(float(np.exp(e))),
        A=Estimate(float(np.exp(a))),
        alpha=Estimate(float(alpha)),
        n_points=len(points),
        objective_value=polished.value,
        n_converged=polished.n_converged,
        n_polished=polished.n_polished,
    )


@dataclass(frozen=True, kw_only=True)
class KaplanResult:
    """L(N), L(D), L(C), each E + A / X^alpha; a law that could not be fitted carries its reason."""

    laws: dict[str, KaplanLawFit]
    """The laws that were fitted (of L_N, L_D, L_C), with intervals when bootstrapped."""
    skipped: dict[str, str]
    """The laws that could not be fitted, with why."""
    objective: str
    """Objective on log-loss residuals."""

    def to_dict(self) -> dict[str, Any]:
        """fit.json's ``kaplan`` object: each law (or {"skipped": reason}), the objective, per-law intervals."""
        out: dict[str, Any] = {}
        for name in LAWS:
            if name in self.laws:
                out[name] = self.laws[name].to_dict()
            elif name in self.skipped:
                out[name] = {"skipped": self.skipped[name]}
        out["objective"] = self.objective
        intervals = {name: intervals_of({p: getattr(law, p) for p in PARAMS}) for name, law in self.laws.items()}
        if any(ci is not None for ci in intervals.values()):
            out["ci95"] = intervals
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], level: float | None = None) -> KaplanResult:
        """fit.json's ``kaplan`` object; its intervals at ``level`` (the fit's ``bootstrap.level``, else 0.95)."""
        intervals = values.get("ci95") or {}
        laws, skipped = {}, {}
        for name in LAWS:
            law = values.get(name)
            if law is None:
                continue
            if "skipped" in law:
                skipped[name] = law["skipped"]
            else:
                law_intervals = intervals.get(name)
                law_level = (0.95 if level is None else level) if law_intervals is not None else None
                laws[name] = KaplanLawFit.from_dict(law, law_intervals, law_level)
        return cls(laws=laws, skipped=skipped, objective=values["objective"])

    def report(self) -> str:
        """The report's section for the Kaplan laws."""
        lines = [f"[[Kaplan: L(X) = E + A/X^alpha, objective {self.objective}]]"]
        for name in LAWS:
            if name in self.skipped:
                lines.append(f"    {name}: skipped: {self.skipped[name]}")
            elif name in self.laws:
                lines.append(self.laws[name].line(name))
        return "\n".join(lines)


def _fit_all(table: pd.DataFrame, config: KaplanConfig) -> tuple[dict[str, KaplanLawFit], dict[str, str]]:
    laws, skipped = {}, {}
    for name, points in law_points(table, config.d_rtol).items():
        try:
            laws[name] = fit_law(points, config)
        except FitError as error:
            skipped[name] = f"{name} {error}"
    return laws, skipped


def _sample(table: pd.DataFrame, config: KaplanConfig) -> dict[str, float] | None:
    laws, _ = _fit_all(table, config)
    return {f"{name}.{p}": getattr(laws[name], p).value if name in laws else np.nan for name in LAWS for p in PARAMS}


def fit_kaplan(
    table: pd.DataFrame,
    config: KaplanConfig | None = None,
    bootstrap_config: BootstrapConfig | None = None,
    resamples: list[pd.DataFrame] | None = None,
) -> KaplanResult:
    """Fit L(N), L(D), L(C); FitError only when none of the three can be fitted."""
    config = config or KaplanConfig()
    laws, skipped = _fit_all(table, config)
    if not laws:
        raise FitError("kaplan: " + "; ".join(skipped.values()))
    result = KaplanResult(laws=laws, skipped=skipped, objective=config.objective)
    if bootstrap_config is None or bootstrap_config.n_resamples == 0:
        return result
    raw = bootstrap.run(_sample, table, bootstrap_config, {"config": config}, resamples=resamples)
    samples = [s for s in raw if s is not None]
    with_intervals = {}
    for name, law in laws.items():
        point = {p: getattr(law, p).value for p in PARAMS}
        per_sample = [{p: s[f"{name}.{p}"] for p in PARAMS} for s in samples]
        estimates = estimates_from_samples(point, per_sample, PARAMS, bootstrap_config.level)
        with_intervals[name] = replace(law, **estimates)
    return replace(result, laws=with_intervals)
