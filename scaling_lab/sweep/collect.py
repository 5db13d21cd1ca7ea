"""Collect one or several sweeps' records into one table the fitter reads (one row per run and D point)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scaling_lab.atomic import atomic_path
from scaling_lab.errors import ConfigError
from scaling_lab.results.store import load_curves, load_table


def write_table_atomically(table: pd.DataFrame, path: Path) -> None:
    """Write a table as Parquet or CSV (by suffix) through a temporary file, so no reader sees half of it."""
    if path.suffix not in (".parquet", ".csv"):
        raise ConfigError(f"out={path}: the table suffix must be .parquet or .csv")
    with atomic_path(path) as temp:
        if path.suffix == ".parquet":
            table.to_parquet(temp, index=False)
        else:
            table.to_csv(temp, index=False)


def collect(stores: list[Path], out_stem: Path, statuses: tuple[str, ...] = ("finished",)) -> dict[str, Path]:
    """Write ``<out_stem>.parquet/.csv`` (final points) and ``<out_stem>_curves.parquet/.csv`` (eval curves).

    Returns the paths written, keyed by ``points_parquet``, ``points_csv``, ``curves_parquet``, ``curves_csv``.
    """
    missing = [str(store) for store in stores if not store.is_dir()]
    if missing:
        raise ConfigError(f"stores={missing}: no such results directory; pass the sweep's results root(s)")
    points = load_table(stores, statuses=statuses)
    curves = load_curves(stores)
    written = {}
    for kind, table in (("points", points), ("curves", curves)):
        stem = out_stem if kind == "points" else out_stem.with_name(out_stem.name + "_curves")
        for suffix in ("parquet", "csv"):
            path = stem.with_suffix(f".{suffix}")
            write_table_atomically(table, path)
            written[f"{kind}_{suffix}"] = path
    return written
