"""Chinchilla approach 1: the lower envelope of loss against FLOPs over every run's loss curve.

Hoffmann et al. 2022, §3.1: for each C on a log grid, the run (model size) reaching the lowest loss at C gives
N_opt(C) and D_opt(C); power laws N_opt ∝ C^a and D_opt ∝ C^b are fitted to those points. Curves are
interpolated linearly in (log C, loss) between recorded points, never extrapolated past a run's ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from scaling_lab.errors import ConfigError, FitError
from scaling_lab.fitting import bootstrap
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.estimate import Estimate, estimates_from_samples, estimates_of, intervals_of
from scaling_lab.fitting.laws import FRONTIER_ESTIMATES, FittedFrontier


@dataclass(frozen=True, kw_only=True)
class Approach1Config:
    """How approach 1 fits."""

    n_flops: int = 250
    """Points of the log-spaced C grid (Hoffmann et al. 2022 use 1,500 over a far wider range)."""
    min_runs: int = 3
    """Skip approach 1 with fewer runs (curves) than this."""
    min_sizes_on_envelope: int = 2
    """Skip approach 1 when fewer distinct sizes than this attain the envelope."""

    def __post_init__(self) -> None:
        if self.n_flops < 10:
            raise ConfigError(f"approach1.n_flops={self.n_flops} is too coarse: use at least 10")
        if self.min_runs < 2 or self.min_sizes_on_envelope < 2:
            raise ConfigError("approach1.min_runs and approach1.min_sizes_on_envelope must be at least 2")


@dataclass(frozen=True, kw_only=True)
class EnvelopePoint:
    """One point of the loss-vs-compute envelope: the run with the lowest loss at C."""

    flops: float
    """C on the log grid."""
    loss: float
    """The lowest loss at C over the runs (interpolated in log C)."""
    n_params: float
    """N of the run attaining it."""
    n_tokens: float
    """That run's D at C (interpolated in log C)."""

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class Approach1Result(FittedFrontier):
    """N_opt(C) = k_n C^a and D_opt(C) = k_d C^b from the loss-vs-compute envelope."""

    a: Estimate
    """Exponent of N_opt ∝ C^a."""
    b: Estimate
    """Exponent of D_opt ∝ C^b."""
    k_n: Estimate
    """N_opt(C) = k_n · C^a."""
    k_d: Estimate
    """D_opt(C) = k_d · C^b."""
    n_runs: int
    """Curves read."""
    n_flops: int
    """C grid points on the envelope (covered by at least two runs)."""
    n_sizes_on_envelope: int
    """Distinct model sizes that attain the envelope somewhere."""
    envelope: tuple[EnvelopePoint, ...]
    """The envelope, by increasing C."""
    n_bootstrap_failed: int = 0
    """Resamples whose fit failed."""
    bootstrap_samples: list[dict[str, float]] | None = None
    """Per resample {a, b, k_n, k_d} (for bands in figures); None without a bootstrap."""

    def to_dict(self) -> dict[str, Any]:
        """fit.json's ``approach1`` object."""
        out: dict[str, Any] = self.frontier_values()
        out.update(n_runs=self.n_runs, n_flops=self.n_flops, n_sizes_on_envelope=self.n_sizes_on_envelope,
                   envelope=[point.to_dict() for point in self.envelope])  # fmt: skip
        intervals = intervals_of(self.frontier_estimates())
        if intervals is not None:
            out["ci95"] = intervals
            out["n_bootstrap_failed"] = self.n_bootstrap_failed
            out["bootstrap_samples"] = self.bootstrap_samples
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], level: float | None = None) -> Approach1Result:
        """fit.json's ``approach1`` object; its intervals at ``level`` (the fit's ``bootstrap.level``, else 0.95)."""
        level = (0.95 if level is None else level) if "ci95" in values else None
        simple = ("n_runs", "n_flops", "n_sizes_on_envelope", "n_bootstrap_failed", "bootstrap_samples")
        return cls(
            **estimates_of(values, FRONTIER_ESTIMATES, values.get("ci95"), level),
            envelope=tuple(EnvelopePoint(**point) for point in values["envelope"]),
            **{name: values[name] for name in simple if name in values},
        )

    def report(self) -> str:
        """The report's section for approach 1."""
        return "\n".join([
            "[[Approach 1: loss-vs-compute envelope]]",
            f"    runs         = {self.n_runs}, envelope points {self.n_flops}, sizes on it {self.n_sizes_on_envelope}",
            f"    a            = {self.a.value:.6g}{self.a.interval_text()}",
            f"    b            = {self.b.value:.6g}{self.b.interval_text()}",
        ])  # fmt: skip


def envelope(curves: pd.DataFrame, n_flops: int) -> pd.DataFrame:
    """Lowest loss at each C of a log grid, with the run's N and interpolated D; only where ≥ 2 runs cover C."""
    runs = []
    for _, rows in curves.groupby("run_id", sort=True):
        rows = rows.sort_values("flops").drop_duplicates("flops")
        if len(rows) >= 2:
            runs.append(rows)
    if not runs:
        return pd.DataFrame(columns=["flops", "loss", "n_params", "n_tokens"])
    low = min(float(r["flops"].iloc[0]) for r in runs)
    high = max(float(r["flops"].iloc[-1]) for r in runs)
    log_grid = np.linspace(np.log(low), np.log(high), n_flops)
    losses = np.full((len(runs), n_flops), np.inf)
    tokens = np.zeros((len(runs), n_flops))
    for i, rows in enumerate(runs):
        log_c = np.log(rows["flops"].to_numpy())
        covered = (log_grid >= log_c[0]) & (log_grid <= log_c[-1])
        losses[i, covered] = np.interp(log_grid[covered], log_c, rows["loss"].to_numpy())
        tokens[i, covered] = np.exp(np.interp(log_grid[covered], log_c, np.log(rows["n_tokens"].to_numpy())))
    keep = np.isfinite(losses).sum(axis=0) >= 2
    best = np.argmin(losses, axis=0)
    columns = np.arange(n_flops)
    sizes = np.array([float(r["n_params"].iloc[0]) for r in runs])
    out = pd.DataFrame(
        {
            "flops": np.exp(log_grid),
            "loss": losses[best, columns],
            "n_params": sizes[best],
            "n_tokens": tokens[best, columns],
        }
    )
    return out[keep].reset_index(drop=True)


def _fit(curves: pd.DataFrame, config: Approach1Config) -> Approach1Result:
    n_runs = int(curves["run_id"].nunique())
    if n_runs < config.min_runs:
        raise FitError(f"approach1 needs loss curves of at least {config.min_runs} runs, found {n_runs}")
    env = envelope(curves, config.n_flops)
    n_sizes = int(env["n_params"].nunique()) if len(env) else 0
    if n_sizes < config.min_sizes_on_envelope:
        raise FitError(
            f"approach1: {n_sizes} model size(s) attain the loss-vs-compute envelope, need "
            f"{config.min_sizes_on_envelope}: train longer curves that cross"
        )
    log_c = np.log(env["flops"].to_numpy())
    a, log_kn = np.polyfit(log_c, np.log(env["n_params"].to_numpy()), 1)
    b, log_kd = np.polyfit(log_c, np.log(env["n_tokens"].to_numpy()), 1)
    point = {"a": float(a), "b": float(b), "k_n": float(np.exp(log_kn)), "k_d": float(np.exp(log_kd))}
    return Approach1Result(
        **estimates_from_samples(point, None, FRONTIER_ESTIMATES, None),
        n_runs=n_runs,
        n_flops=len(env),
        n_sizes_on_envelope=n_sizes,
        envelope=tuple(EnvelopePoint(**row) for row in env.to_dict(orient="records")),
    )


def _sample(curves: pd.DataFrame, config: Approach1Config) -> dict[str, float] | None:
    # A run drawn twice is the same curve: the envelope depends only on which runs the resample holds.
    try:
        result = _fit(curves, config)
    except FitError:
        return None
    return result.frontier_values()


def fit_approach1(
    curves: pd.DataFrame,
    config: Approach1Config | None = None,
    bootstrap_config: BootstrapConfig | None = None,
    resamples: list[pd.DataFrame] | None = None,
) -> Approach1Result:
    """Fit approach 1 to a curves table (columns n_params, n_tokens, flops, loss, run_id).

    The bootstrap resamples whole runs (a curve is one unit), or refits the given ``resamples`` (the seeds of each
    run redrawn, bootstrap.seed_resamples).
    """
    config = config or Approach1Config()
    result = _fit(curves, config)
    if bootstrap_config is None or bootstrap_config.n_resamples == 0:
        return result
    by_run = replace(bootstrap_config, by="run_id")
    raw = bootstrap.run(_sample, curves, by_run, {"config": config}, resamples=resamples)
    samples = [s for s in raw if s is not None]
    if not samples:
        return replace(result, n_bootstrap_failed=len(raw))
    point = result.frontier_values()
    return replace(
        result,
        **estimates_from_samples(point, samples, FRONTIER_ESTIMATES, bootstrap_config.level),
        n_bootstrap_failed=len(raw) - len(samples),
        bootstrap_samples=samples,
    )
