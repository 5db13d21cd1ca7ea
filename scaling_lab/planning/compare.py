"""Data-mix comparison: one approach-3 fit per group, side by side with bootstrap intervals, and which differences
lie outside them.

A difference between two mixes is called out when their 95% bootstrap intervals do not overlap. This is
conservative (for two equal normal intervals it is a test at about p < 0.006, Schenker & Gentleman 2001):
a difference not called out may still be real; one called out is unlikely to be resampling noise. It says
nothing about differences in the training setup other than the data, which the user must hold fixed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from scaling_lab.errors import FitError
from scaling_lab.fitting.bootstrap import percentile_interval
from scaling_lab.fitting.estimate import Estimate
from scaling_lab.planning.budget import INTERVAL_LEVEL
from scaling_lab.planning.laws import LoadedLaw, law_parameters
from scaling_lab.plotting.figures import save

COMPARED = ("E", "A", "B", "alpha", "beta", "a", "b")
"""Quantities compared between mixes: the law and its frontier exponents (Hoffmann et al. 2022, eq. 2 and 4)."""


def _fit(table: pd.DataFrame, source: str, config, bootstrap_config) -> LoadedLaw:
    from scaling_lab.fitting.approach3 import fit_approach3  # the fitter's public API

    try:
        result = fit_approach3(table, config, bootstrap_config)
    except FitError as error:
        raise FitError(f"compare: {source}: {error}") from error
    return LoadedLaw.from_result(result, source=source)


def fit_groups(
    table: pd.DataFrame, *, group_column: str = "group", config=None, bootstrap_config=None
) -> dict[str, LoadedLaw]:
    """Fit approach 3 (``scaling_lab.fitting.approach3.fit_approach3``) to each group of one fit table.

    ``config`` is an ``Approach3Config`` and ``bootstrap_config`` a ``BootstrapConfig`` (None: the fitter's defaults,
    no bootstrap)."""
    if group_column not in table.columns:
        raise FitError(f"compare: the table has no {group_column!r} column; name the mix column with group_column")
    fits = {}
    for name, group in table.groupby(group_column, sort=True):
        rows = group.reset_index(drop=True)
        rows.attrs = dict(table.attrs)
        fits[str(name)] = _fit(rows, f"{group_column}={name}", config, bootstrap_config)
    return fits


def fit_sources(
    sources: Mapping[str, str | Path], *, table_config=None, config=None, bootstrap_config=None
) -> dict[str, LoadedLaw]:
    """Fit approach 3 to each named source — a results store directory or a CSV/Parquet table, read by the fitter's
    ``scaling_lab.fitting.table.load_input`` with ``table_config`` (a ``TableConfig``) — one mix per source."""
    from scaling_lab.fitting.table import TableConfig, load_input

    table_config = table_config or TableConfig()
    tables = {name: load_input(path, table_config).points for name, path in sources.items()}
    suites = {name: table.attrs.get("eval_suite_hash") for name, table in tables.items()}
    if len(set(suites.values())) > 1:
        listed = ", ".join(f"{name}: {suite or 'none'}" for name, suite in suites.items())
        raise FitError(
            f"compare: the sources were scored on different eval suites ({listed}), so their losses measure different"
            " text: compare mixes trained with the same data.eval_sets and data.eval_bytes"
        )
    return {name: _fit(table, f"{name} ({sources[name]})", config, bootstrap_config) for name, table in tables.items()}


@dataclass(frozen=True, kw_only=True)
class Difference:
    """One quantity whose intervals do not overlap between two mixes."""

    quantity: str
    """E, A, B, alpha, beta, a or b."""
    first: str
    """Mix with the lower value."""
    second: str
    """Mix with the higher value."""
    low: Estimate
    """The lower mix's estimate."""
    high: Estimate
    """The higher mix's estimate."""

    def sentence(self) -> str:
        return (
            f"{self.quantity}: {self.first} {self.low.format('.4g')} < {self.second} {self.high.format('.4g')} "
            "(95% intervals do not overlap)"
        )


@dataclass(frozen=True, kw_only=True)
class MixComparison:
    """Per-mix estimates with intervals and the differences that lie outside them."""

    estimates: dict[str, dict[str, Estimate]]
    """mix → quantity → estimate."""
    differences: tuple[Difference, ...]
    """Quantities whose intervals do not overlap, for each pair of mixes."""
    without_intervals: tuple[str, ...]
    """Mixes fitted without bootstrap samples (nothing can be called different for them)."""
    target: str = "loss"
    """The loss every mix was fitted on: ``loss`` (the eval suite's union, nats/token) or ``<metric>_<eval set>``
    (fit.table.target and fit.table.metric): the same text for every mix."""

    def table(self) -> pd.DataFrame:
        """Rows are mixes, columns the compared quantities, cells ``value [low, high]``."""
        return pd.DataFrame(
            {mix: {q: e.format(".4g") for q, e in row.items()} for mix, row in self.estimates.items()}
        ).T[list(COMPARED)]

    def statement(self) -> str:
        """The differences in plain words."""
        lines = [f"every mix fitted on the same eval text: {self.target}"]
        if self.without_intervals:
            lines.append(
                f"no bootstrap samples for {', '.join(self.without_intervals)}: refit with "
                "bootstrap.n_resamples > 0 to compare them"
            )
        if self.differences:
            lines += [d.sentence() for d in self.differences]
        else:
            lines.append(f"no difference in {', '.join(COMPARED)} lies outside the 95% bootstrap intervals")
        return "\n".join(lines)

    def report(self) -> str:
        return self.table().to_string() + "\n" + self.statement()


def _estimates(loaded: LoadedLaw) -> dict[str, Estimate]:
    point = law_parameters(loaded.law)
    per_sample = [law_parameters(s) for s in loaded.samples]
    return {q: Estimate.from_samples(point[q], [s[q] for s in per_sample], INTERVAL_LEVEL) for q in COMPARED}


def compare_fits(fits: Mapping[str, LoadedLaw], *, target: str = "loss") -> MixComparison:
    """Side-by-side estimates of every mix and the pairwise differences whose intervals do not overlap; ``target``
    names the loss column all of them were fitted on (the fit table's ``attrs["loss_column"]``)."""
    if len(fits) < 2:
        raise FitError(f"compare: need at least 2 groups, got {len(fits)} ({', '.join(fits) or 'none'})")
    estimates = {name: _estimates(loaded) for name, loaded in fits.items()}
    differences = []
    for (name_1, est_1), (name_2, est_2) in itertools.combinations(estimates.items(), 2):
        for q in COMPARED:
            e1, e2 = est_1[q], est_2[q]
            if np.isnan(e1.low) or np.isnan(e2.low):
                continue
            if e1.high < e2.low:
                differences.append(Difference(quantity=q, first=name_1, second=name_2, low=e1, high=e2))
            elif e2.high < e1.low:
                differences.append(Difference(quantity=q, first=name_2, second=name_1, low=e2, high=e1))
    without = tuple(name for name, loaded in fits.items() if not loaded.samples)
    return MixComparison(estimates=estimates, differences=tuple(differences), without_intervals=without, target=target)


def _band(loaded: LoadedLaw, quantity, flops: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    if not loaded.samples:
        return None
    per_sample = np.array([quantity(s, flops, loaded.per_token) for s in loaded.samples])
    low, high = np.array([percentile_interval(column, INTERVAL_LEVEL) for column in per_sample.T]).T
    return low, high


def comparison_figure(
    fits: Mapping[str, LoadedLaw],
    *,
    flops_range: tuple[float, float],
    table: pd.DataFrame | None = None,
    group_column: str = "group",
) -> Figure:
    """Two panels, one colour per mix: the frontier N_opt(C) and the optimal loss L(C), each with its 95% band,
    solved along each fit's own FLOPs; the table's points (``flops``, ``loss``) are drawn on the loss panel."""
    flops = np.geomspace(*flops_range, 200)
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    frontier_axes, loss_axes = figure.subplots(1, 2)
    panels = (
        (frontier_axes, lambda law, c, per_token: law.n_opt(c, per_token), "compute-optimal N"),
        (loss_axes, lambda law, c, per_token: law.loss_at_optimum(c, per_token), "loss at the optimum"),
    )
    for colour, (name, loaded) in zip(itertools.cycle([f"C{i}" for i in range(10)]), fits.items(), strict=False):
        for axes, quantity, _ in panels:
            axes.plot(flops, quantity(loaded.law, flops, loaded.per_token), color=colour, label=name)
            band = _band(loaded, quantity, flops)
            if band is not None:
                axes.fill_between(flops, *band, color=colour, alpha=0.2, linewidth=0)
        if table is not None and group_column in table.columns:
            rows = table[table[group_column].astype(str) == name]
            loss_axes.scatter(rows["flops"], rows["loss"], color=colour, s=10, alpha=0.6)
    for axes, _, label in panels:
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("training compute C (FLOPs)")
        axes.set_ylabel(label)
        axes.legend()
    return figure


def plot_comparison(
    fits: Mapping[str, LoadedLaw],
    out_dir: str | Path,
    *,
    flops_range: tuple[float, float],
    table: pd.DataFrame | None = None,
    group_column: str = "group",
    name: str = "mix_comparison",
) -> list[Path]:
    """Write :func:`comparison_figure` as ``name``.png and .svg into out_dir (the fitter's figure writer)."""
    figure = comparison_figure(fits, flops_range=flops_range, table=table, group_column=group_column)
    return save(figure, Path(out_dir), name)
