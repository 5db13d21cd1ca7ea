"""Seeds as replicates: rows of a fit table that share (group, N, D) are one point measured with several seeds.

At small scale the spread between seeds can exceed every other error: at the CPU quickstart's scale two seeds of
one (N, D) point differed by up to 5 % of the loss, against a standard error of the eval set below 0.5 %. A sweep
with a seed axis (``sl-train -m ... seed=0,1,2``) gives each point several rows; the fit either averages them
(``mean``: one row per point, the mean's standard error kept) or keeps them (``all``), the bootstrap redraws the
seeds within each point, and the report states the spread (:func:`seed_spread`).

Any other axis that repeats (N, D) (a learning-rate sweep, two schedules) is not a seed: fit those as separate
groups or filter them first, or they are averaged as if they were seeds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scaling_lab.errors import ConfigError

SEED_MODES = ("mean", "all")
"""``mean``: one row per (N, D) point, the mean over its seeds; ``all``: every seed is a row."""

SINGLE_SEED_NOTE = "1 seed per point: seed noise not measured"


def point_columns(table: pd.DataFrame) -> list[str]:
    """The columns naming a point: N and D, within a group when the table has one."""
    return [c for c in ("group", "n_params", "n_tokens") if c in table.columns]


def seeds_per_point(table: pd.DataFrame) -> pd.Series:
    """Rows (seeds) of each point."""
    return table.groupby(point_columns(table), sort=True).size()


def max_seeds(table: pd.DataFrame) -> int:
    """The most seeds any point has (1 for a table without replicates)."""
    return int(seeds_per_point(table).max()) if len(table) else 0


def min_seeds(table: pd.DataFrame) -> int:
    """The fewest seeds any point has."""
    return int(seeds_per_point(table).min()) if len(table) else 0


def check_mode(mode: str) -> None:
    if mode not in SEED_MODES:
        raise ConfigError(f"table.seeds={mode!r} is unknown: choose {' or '.join(SEED_MODES)}")


def with_run_tokens(curves: pd.DataFrame) -> pd.DataFrame:
    """Curves with ``run_tokens``, the last n_tokens of each run: the runs of one (group, N, run_tokens) are the
    seeds of one run (same recipe, so the same evaluation steps)."""
    out = curves.assign(run_tokens=curves.groupby("run_id")["n_tokens"].transform("max"))
    out.attrs = dict(curves.attrs)
    return out


RUN_COLUMNS = ("group", "n_params", "run_tokens")
"""The columns naming a run up to its seed, in a curves table from :func:`with_run_tokens`."""


def _mean_rows(table: pd.DataFrame, keys: list[str], label_keys: list[str]) -> pd.DataFrame:
    """Average loss (and C) over the rows of each ``keys`` group; the row keeps the smallest seed of its
    ``label_keys`` group and that seed's run_id, so that one run's points keep one run_id."""
    grouped = table.groupby(keys, sort=False)  # points in the order they first appear
    out = grouped.agg(
        loss=("loss", "mean"),
        flops=("flops", "mean"),
        n_seeds=("loss", "size"),
        loss_std=("loss", "std"),
    ).reset_index()
    out["loss_sem"] = out.pop("loss_std") / np.sqrt(out["n_seeds"])  # NaN for one seed: no standard error
    labels = [c for c in ("seed", "run_id") if c in table.columns]
    if labels:
        first = table.sort_values(labels).drop_duplicates(label_keys)[[*label_keys, *labels]]
        out = out.merge(first, on=label_keys, how="left")
    if "loss_stderr" in table.columns:  # seeds share the eval set: its sampling error does not average out
        out = out.merge(grouped["loss_stderr"].mean().reset_index(), on=keys, how="left")
    return out


def _ordered(averaged: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """The averaged rows with ``like``'s columns in its order, then n_seeds and loss_sem."""
    columns = [c for c in like.columns if c in averaged.columns and c not in ("n_seeds", "loss_sem")]
    return averaged[[*columns, "n_seeds", "loss_sem"]]


def average_points(table: pd.DataFrame) -> pd.DataFrame:
    """One row per point: the mean loss over its seeds, ``n_seeds`` and ``loss_sem`` (standard error of the mean,
    NaN with one seed). Columns as the input's (``seed`` and ``run_id`` are those of the point's smallest seed)."""
    keys = point_columns(table)
    out = _ordered(_mean_rows(table, keys, keys), table)
    out.attrs = dict(table.attrs)
    return out


def average_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """The seeds of each run averaged at every evaluation; each averaged curve keeps one run_id (the smallest
    seed's) so approach 1 still reads it as one run."""
    curves = with_run_tokens(curves)
    keys = [c for c in RUN_COLUMNS if c in curves.columns]
    out = _ordered(_mean_rows(curves, [*keys, "n_tokens"], keys), curves.drop(columns="run_tokens"))
    out.attrs = dict(curves.attrs)
    return out


def combine_points(table: pd.DataFrame, mode: str) -> pd.DataFrame:
    """The fit table of a per-seed table: averaged (``mean``) or every row as it is (``all``)."""
    check_mode(mode)
    return average_points(table) if mode == "mean" else table


def combine_curves(curves: pd.DataFrame | None, mode: str) -> pd.DataFrame | None:
    """The curves approach 1 reads: seeds averaged (``mean``) or every run (``all``)."""
    check_mode(mode)
    if curves is None or mode == "all":
        return curves
    return average_curves(curves)


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


def isoflop_slices(table: pd.DataFrame, budget_rtol: float) -> np.ndarray | None:
    """Each row's isoFLOP budget when the table is an isoFLOP design, else None.

    An isoFLOP design puts several sizes on each budget: we call it one when its distinct points fall into at
    most half as many budgets (C within ``budget_rtol``) as there are points; otherwise (an N×D grid, a ladder)
    the slices are the model sizes.
    """
    labels = assign_budgets(table["flops"].to_numpy(dtype=float), budget_rtol)
    n_points = len(seeds_per_point(table))
    return labels if 2 * len(np.unique(labels)) <= n_points else None


def _spread_of(per_point: pd.DataFrame) -> dict[str, Any]:
    """Spread statistics over points (rows: loss_mean, loss_range, loss_std, n_seeds, eval_stderr)."""
    multi = per_point[per_point["n_seeds"] >= 2]
    out: dict[str, Any] = {
        "n_points": len(per_point),
        "n_points_multi_seed": len(multi),
        "max_seeds": int(per_point["n_seeds"].max()),
    }
    if len(multi):
        relative = 100.0 * multi["loss_range"] / multi["loss_mean"]
        out.update(
            range_mean=float(multi["loss_range"].mean()),
            range_max=float(multi["loss_range"].max()),
            range_mean_pct=float(relative.mean()),
            range_max_pct=float(relative.max()),
            std_mean=float(multi["loss_std"].mean()),
            std_mean_pct=float((100.0 * multi["loss_std"] / multi["loss_mean"]).mean()),
        )
    stderr = per_point["eval_stderr"].dropna()
    if len(stderr):
        rows = per_point.loc[stderr.index]
        out.update(
            eval_stderr=float(stderr.mean()),
            eval_stderr_pct=float((100.0 * stderr / rows["loss_mean"]).mean()),
        )
    return out


def seed_spread(table: pd.DataFrame, budget_rtol: float = 0.05) -> dict[str, Any]:
    """The seed-to-seed spread of a per-seed table, overall and per slice (isoFLOP budget, else model size N).

    Per point with ≥ 2 seeds: ``range`` = max − min loss over its seeds (the absolute difference for two seeds)
    and ``std`` = their sample standard deviation, in nats and in % of the point's mean loss. Reported: their mean
    (and the range's max) over points; next to them the eval set's standard error when the table has a
    ``loss_stderr`` column. ``note`` says so when no point has two seeds.
    """
    keys = point_columns(table)
    grouped = table.groupby(keys, sort=True)
    per_point = grouped.agg(
        loss_mean=("loss", "mean"),
        loss_range=("loss", lambda x: float(x.max() - x.min())),
        loss_std=("loss", "std"),
        n_seeds=("loss", "size"),
        flops=("flops", "mean"),
    ).reset_index()
    per_point["eval_stderr"] = grouped["loss_stderr"].mean().to_numpy() if "loss_stderr" in table.columns else np.nan
    out = _spread_of(per_point)
    if out["n_points_multi_seed"] == 0:
        return {**out, "note": SINGLE_SEED_NOTE, "slices": []}
    labels = isoflop_slices(per_point, budget_rtol)
    slice_by = "flops" if labels is not None else "n_params"
    per_point["slice"] = labels if labels is not None else per_point["n_params"].to_numpy(dtype=float)
    out["slice_by"] = slice_by
    out["slices"] = [
        {slice_by: float(value), **_spread_of(rows)} for value, rows in per_point.groupby("slice", sort=True)
    ]
    return out


def spread_lines(spread: dict[str, Any]) -> list[str]:
    """report.txt's lines for :func:`seed_spread`."""
    if spread.get("note"):
        return [f"    {spread['note']} ({spread['n_points']} points)"]

    def numbers(values: dict[str, Any]) -> str:
        text = (
            f"|diff| mean {values['range_mean']:.4f} nats ({values['range_mean_pct']:.2f} %), "
            f"max {values['range_max']:.4f} ({values['range_max_pct']:.2f} %); "
            f"std {values['std_mean']:.4f} ({values['std_mean_pct']:.2f} %)"
        )
        if "eval_stderr" in values:
            text += f"; eval s.e. {values['eval_stderr']:.4f} ({values['eval_stderr_pct']:.2f} %)"
        return text

    lines = [
        f"    points       = {spread['n_points_multi_seed']} of {spread['n_points']} with ≥ 2 seeds"
        f" (up to {spread['max_seeds']}); |diff| = max − min over a point's seeds",
        f"    all          = {numbers(spread)}",
    ]
    name = "C" if spread["slice_by"] == "flops" else "N"
    for row in spread["slices"]:
        if row["n_points_multi_seed"]:
            lines.append(
                f"      {name}={row[spread['slice_by']]:.3g}  {row['n_points_multi_seed']}/{row['n_points']} points  "
                + numbers(row)
            )
        else:
            lines.append(f"      {name}={row[spread['slice_by']]:.3g}  {row['n_points']} points, 1 seed each")
    return lines
