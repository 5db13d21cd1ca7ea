"""Collect one or several sweeps' records into one table the fitter reads (one row per run and D point)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scaling_lab.atomic import atomic_path
from scaling_lab.errors import ConfigError
from scaling_lab.outputs import check_output_file
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
    paths = output_paths(out_stem)
    for path in paths.values():  # before reading a store of thousands of records
        check_output_file(path, "out")
    tables = {"points": load_table(stores, statuses=statuses), "curves": load_curves(stores)}
    for key, path in paths.items():
        write_table_atomically(tables[key.split("_")[0]], path)
    return paths


def output_paths(out_stem: Path) -> dict[str, Path]:
    """The four tables :func:`collect` writes, keyed ``points_parquet``, ``points_csv``, ``curves_parquet``,
    ``curves_csv``."""
    stems = {"points": out_stem, "curves": out_stem.with_name(out_stem.name + "_curves")}
    return {f"{kind}_{suffix}": stem.with_suffix(f".{suffix}") for kind, stem in stems.items()
            for suffix in ("parquet", "csv")}  # fmt: skip
