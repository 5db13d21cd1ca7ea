"""Collect one or several sweeps' records into one table the fitter reads (one row per run and D point)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from scaling_lab.atomic import atomic_path
from scaling_lab.errors import ConfigError, TableError
from scaling_lab.outputs import check_output_file
from scaling_lab.results.store import curves_of, describe_skipped, scan_record_files, table_of, warn_skipped


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
    """Write ``<out_stem>.parquet/.csv`` (final points) and ``<out_stem>_curves.parquet/.csv`` (eval curves) of the
    records whose status is in ``statuses``.

    Every store must exist and hold at least one usable record, and some record must have one of ``statuses``:
    otherwise a TableError or ConfigError, and nothing is written (empty tables would only fail later, in sl-fit).
    Unusable files are skipped with one warning. Returns the paths written, keyed by ``points_parquet``,
    ``points_csv``, ``curves_parquet``, ``curves_csv``.
    """
    if not stores:
        raise ConfigError("stores=[] names no results store: pass one or more, e.g. stores=[results/quickstart]")
    missing = [str(store) for store in stores if not store.is_dir()]
    if missing:
        raise ConfigError(f"stores={missing}: no such results directory; pass the sweep's results root(s)")
    paths = output_paths(out_stem)
    for path in paths.values():  # before reading a store of thousands of records
        check_output_file(path, "out")
    by_path, skipped = scan_record_files(stores)  # read once: a skipped file is warned about once
    for store in stores:
        inside = store.resolve()
        if not any(inside in path.resolve().parents for path in by_path):
            unusable = f" ({describe_skipped(skipped)})" if skipped else ""
            raise TableError(f"stores: {store} holds no usable run.json{unusable}: pass the sweep's results root")
    records = list(by_path.values())
    points = table_of(records, statuses=statuses)
    if points.empty:
        raise TableError(
            f"stores={[str(store) for store in stores]}: no run with status {', '.join(statuses)} among"
            f" {len(records)} record(s): wait for the sweep, or pass statuses=[...]"
        )
    warn_skipped(skipped)
    tables = {"points": points, "curves": curves_of(records, statuses=statuses)}
    for key, path in paths.items():
        write_table_atomically(tables[key.split("_")[0]], path)
    return paths


def output_paths(out_stem: Path) -> dict[str, Path]:
    """The four tables :func:`collect` writes, keyed ``points_parquet``, ``points_csv``, ``curves_parquet``,
    ``curves_csv``."""
    stems = {"points": out_stem, "curves": out_stem.with_name(out_stem.name + "_curves")}
    return {f"{kind}_{suffix}": stem.with_suffix(f".{suffix}") for kind, stem in stems.items()
            for suffix in ("parquet", "csv")}  # fmt: skip
