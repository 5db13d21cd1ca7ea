"""Bootstrap resampling shared by every approach: seeded, by seed within each point, by point, by group of points
or by residual, parallel.

Percentile intervals (Efron & Tibshirani 1993, §13.3). The resamples are drawn once in the parent from one seed,
so the samples do not depend on how many processes compute them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from scaling_lab.cores import usable_cores
from scaling_lab.errors import ConfigError
from scaling_lab.fitting.seeds import min_seeds, point_columns

BY = ("auto", "seed", "point", "run_id", "n_params", "group")
"""Resampling units: the seeds of each (N, D) point (stratified), single points, or all points of one run / model
size / group together; ``auto`` is ``seed`` when every point of the table has ≥ 2 seeds, else ``point``."""


@dataclass(frozen=True, kw_only=True)
class BootstrapConfig:
    """How to bootstrap a fit."""

    n_resamples: int = 0
    """Resamples; 0 turns the bootstrap off."""
    seed: int = 0
    """Seed of the resample indices (results do not depend on n_jobs)."""
    by: str = "auto"
    """Resampling unit: ``seed`` (each (N, D) point's seeds drawn with replacement, the design kept), ``point``, or
    ``run_id`` / ``n_params`` / ``group`` to resample whole groups of points; ``auto`` (:func:`resolve_by`)."""
    level: float = 0.95
    """Central probability of the percentile intervals."""
    n_jobs: int = -1
    """Worker processes (joblib; -1 = every core this process may use, 1 = in this process)."""

    def __post_init__(self) -> None:
        if self.n_resamples < 0:
            raise ConfigError(f"bootstrap.n_resamples={self.n_resamples} is negative: use 0 (off) or more")
        if self.by not in BY:
            raise ConfigError(f"bootstrap.by={self.by!r} is unknown: choose one of {', '.join(BY)}")
        if not 0 < self.level < 1:
            raise ConfigError(f"bootstrap.level={self.level} must be in (0, 1), for example 0.95")
        if self.n_jobs == 0:
            raise ConfigError("bootstrap.n_jobs=0: use -1 for all cores or a positive count")


def resolve_by(table: pd.DataFrame, by: str) -> str:
    """``auto`` → ``seed`` when every (N, D) point of the per-seed ``table`` has ≥ 2 rows (seeds), else ``point``.

    Resampling seeds within points keeps the design (every point, every size of every slice) and redraws only the
    seed noise, which at small scale is the largest error; rows drawn across points would also redraw the design.
    But a point with one seed is the same in every such resample: where some points have one seed, their noise
    would count as zero (a few repeated runs added to a single-seed sweep would collapse every interval), so
    ``auto`` draws points instead.
    """
    if by != "auto":
        return by
    return "seed" if min_seeds(table) >= 2 else "point"


def seed_indices(
    table: pd.DataFrame, config: BootstrapConfig, *, strata: Sequence[str] | None = None, unit: str | None = None
) -> list[np.ndarray]:
    """Row indices of stratified resamples: within each stratum (rows sharing the ``strata`` columns; default the
    point's group, N and D) its units are drawn with replacement, as many as it has. Units are rows, or all rows
    sharing a ``unit`` value (a run's curve)."""
    strata = list(strata) if strata is not None else point_columns(table)
    rng = np.random.default_rng(config.seed)
    groups = table.groupby(strata, sort=True).indices
    units: list[list[np.ndarray]] = []
    for key in sorted(groups):
        rows = np.sort(groups[key])
        if unit is None:
            units.append([rows[i : i + 1] for i in range(len(rows))])
        else:
            labels = table[unit].to_numpy()[rows]
            units.append([rows[labels == label] for label in pd.unique(labels)])
    return [
        np.concatenate([stratum[i] for stratum in units for i in rng.integers(0, len(stratum), size=len(stratum))])
        for _ in range(config.n_resamples)
    ]


def seed_resamples(
    table: pd.DataFrame,
    config: BootstrapConfig,
    *,
    strata: Sequence[str] | None = None,
    unit: str | None = None,
    combine: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> list[pd.DataFrame]:
    """The resamples of :func:`seed_indices`, each made a fit table by ``combine`` (for example the seed mean).

    A fixed-design bootstrap like :func:`residual_resamples`: every point keeps its N, D and number of seeds and
    only the seed noise is redrawn; a point with one seed is the same in every resample (its noise is unmeasured).
    """
    out = []
    for indices in seed_indices(table, config, strata=strata, unit=unit):
        resample = table.iloc[indices].reset_index(drop=True)
        resample.attrs = dict(table.attrs)
        out.append(combine(resample) if combine is not None else resample)
    return out


def resample_indices(table: pd.DataFrame, config: BootstrapConfig) -> list[np.ndarray]:
    """Row indices of each resample: points drawn with replacement, or whole units drawn with replacement
    (``seed``: see :func:`seed_resamples`)."""
    rng = np.random.default_rng(config.seed)
    n = len(table)
    by = resolve_by(table, config.by)
    if by == "seed":
        return seed_indices(table, config)
    if by == "point":
        return [rng.integers(0, n, size=n) for _ in range(config.n_resamples)]
    units = [np.flatnonzero(mask) for mask in _unit_masks(table, by)]
    out = []
    for _ in range(config.n_resamples):
        drawn = rng.integers(0, len(units), size=len(units))
        out.append(np.concatenate([units[i] for i in drawn]))
    return out


def residual_resamples(
    table: pd.DataFrame, fitted: np.ndarray, residuals: np.ndarray, config: BootstrapConfig
) -> list[pd.DataFrame]:
    """Fixed-design bootstrap: every row keeps its N and D; its loss becomes its fitted value plus a residual
    drawn with replacement from ``residuals`` (Davison & Hinkley 1997, §6.2.3: pass leverage-adjusted residuals).

    For a designed experiment (an isoFLOP grid chooses its sizes) this resamples only the measurement noise;
    resampling rows would also redraw the design and drop sizes from the slices.
    """
    rng = np.random.default_rng(config.seed)
    centred = np.asarray(residuals, dtype=float) - np.mean(residuals)
    return [
        table.assign(loss=fitted + rng.choice(centred, size=len(table), replace=True))
        for _ in range(config.n_resamples)
    ]


def _unit_masks(table: pd.DataFrame, by: str) -> list[np.ndarray]:
    keys = table[by].to_numpy()
    return [keys == key for key in pd.unique(keys)]


def percentile_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of finite values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    tail = 50.0 * (1.0 - level)
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return (float(low), float(high))


def _run_chunk(
    fn: Callable[..., dict[str, float] | None], chunk: list[pd.DataFrame], kwargs: dict[str, Any]
) -> list[dict[str, float] | None]:
    # Keep each worker single-threaded: the parallelism is across resamples (2 cores shared, see README).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    return [fn(resample, **kwargs) for resample in chunk]


def run(
    fn: Callable[..., dict[str, float] | None],
    table: pd.DataFrame,
    config: BootstrapConfig,
    kwargs: dict[str, Any],
    *,
    resamples: list[pd.DataFrame] | None = None,
) -> list[dict[str, float] | None]:
    """Apply ``fn(resampled_table, **kwargs)`` to every resample, in parallel; a failed fit is None.

    The resamples are rows of ``table`` drawn as ``config.by`` says, unless given (see residual_resamples and
    seed_resamples: with ``table.seeds=mean`` the fitter draws the seeds from the per-seed table and averages).
    ``fn`` must be a module-level function (it is pickled to the workers).
    """
    if resamples is None:
        resamples = [table.iloc[idx].reset_index(drop=True) for idx in resample_indices(table, config)]
    if not resamples:
        return []
    n_jobs = usable_cores() if config.n_jobs < 0 else config.n_jobs
    n_jobs = max(1, min(n_jobs, len(resamples)))
    if n_jobs == 1:
        return _run_chunk(fn, resamples, kwargs)
    chunks = [resamples[i::n_jobs] for i in range(n_jobs)]
    parts = Parallel(n_jobs=n_jobs, backend="loky")(delayed(_run_chunk)(fn, c, kwargs) for c in chunks)
    # Undo the round-robin split so sample i is resample i.
    out: list[dict[str, float] | None] = [None] * len(resamples)
    for j, part in enumerate(parts):
        out[j::n_jobs] = part
    return out
