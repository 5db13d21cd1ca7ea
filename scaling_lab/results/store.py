"""The results store: one ``run.json`` per run on disk, written atomically, read back as tables.

Layout: ``<root>/<sweep>/<run_id>/run.json``. Results on disk are the source of truth (docs/ARCHITECTURE.md);
wandb only mirrors them. This module never imports torch: the fitter imports it.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from scaling_lab.atomic import write_text_atomically
from scaling_lab.errors import TableError
from scaling_lab.results.provenance import run_config_hash
from scaling_lab.results.record import (
    CONFIG_HASHED_FROM_SCHEMA,
    STATUSES,
    CurvePoint,
    RunPoint,
    RunRecord,
    check_directory_name,
)

RECORD_FILENAME = "run.json"

Roots = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
"""One results root (or a sweep's directory, or one run.json), or several."""

TABLE_COLUMNS = (
    "run_id",
    "sweep",
    "group",
    "seed",
    "data_seed",
    "data_mix_hash",
    "eval_suite_hash",
    "status",
    "config_hash",
    "n_params_total",
    "n_params_nonembed",
    "n_params_active",
    "n_params_active_nonembed",
    "n_experts",
    "experts_per_token",
    "granularity",
    "tied_embeddings",
    "n_tokens",
    "flops_6nd",
    "flops_exact",
    "loss",
    "train_loss",
    "learning_rate",
    "batch_size",
    "schedule",
)
"""Columns of :func:`load_table`, in order: one row per (run, point). Records that score an eval suite add
``loss_<set>`` and ``bpb_<set>`` for each eval set and for the union (``loss_all``, ``bpb_all``):
:func:`suite_columns`."""

CURVE_COLUMNS = (
    "run_id",
    "sweep",
    "group",
    "seed",
    "data_seed",
    "n_params_total",
    "n_params_nonembed",
    "n_params_active",
    "n_params_active_nonembed",
    "n_experts",
    "experts_per_token",
    "granularity",
    "n_tokens",
    "flops_6nd",
    "flops_exact",
    "loss",
)
"""Columns of :func:`load_curves`, in order: one row per (run, intermediate evaluation); the per-set columns of
:func:`suite_columns` follow."""


def suite_columns(point: RunPoint | CurvePoint) -> dict[str, float]:
    """A point's eval-suite columns: ``loss_<set>`` (nats/token) and ``bpb_<set>`` (bits per byte) per set and for
    the union (``all``)."""
    return {**{f"loss_{name}": value for name, value in point.losses.items()},
            **{f"bpb_{name}": value for name, value in point.bpb.items()}}  # fmt: skip


# Where load_table finds learning rate, batch size and schedule in a record's config (the trainer's RunConfig,
# config/schema.py, with rule-derived values resolved: train/run.py `resolved_config`). batch_size is in tokens
# per optimizer step (optim.batch_tokens), the unit the per-size batch rules use (DeepSeek LLM 2024). seed (the
# record's, model init) and data_seed (data order) tell the replicates of one (N, D) point apart.
CONFIG_COLUMNS: dict[str, str] = {
    "learning_rate": "optim.lr",
    "batch_size": "optim.batch_tokens",
    "schedule": "schedule.kind",
}


class SkippedRecordsWarning(UserWarning):
    """Some run.json files could not be used (unreadable, invalid, or another grid point's); the warning lists each
    file and why."""


def run_dir(root: str | os.PathLike[str], sweep: str, run_id: str) -> Path:
    """The directory of one run: ``<root>/<sweep>/<run_id>``."""
    check_directory_name("sweep", sweep)
    check_directory_name("run_id", run_id)
    return Path(root) / sweep / run_id


def record_path(root: str | os.PathLike[str], sweep: str, run_id: str) -> Path:
    """Where one run's record lives: ``<root>/<sweep>/<run_id>/run.json``."""
    return run_dir(root, sweep, run_id) / RECORD_FILENAME


def write_record(record: RunRecord, root: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``record`` to its place under ``root`` atomically and return the path.

    The JSON goes to a temporary file in the same directory, is flushed and fsynced, then renamed over the
    target (``os.replace`` is atomic on POSIX and Windows), and the directory is fsynced: a reader sees the
    old record or the new one, never a part. A finished record is never replaced unless ``overwrite=True``
    (a grid point runs once); running, failed and diverged records are replaced freely.
    """
    path = record_path(root, record.sweep, record.run_id)
    if not overwrite and _stored_status(path) == "finished":
        raise TableError(f"{path}: holds a finished record; delete it or pass overwrite=True to replace it")
    write_text_atomically(path, json.dumps(record.to_dict(), indent=2, allow_nan=True) + "\n")
    _fsync_directory(path.parent)
    return path


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _stored_status(path: Path) -> str | None:
    """The status written in an existing record file, or None when there is none or it cannot be read."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("status") if isinstance(data, dict) else None


def read_record(path: str | os.PathLike[str]) -> RunRecord:
    """Read and validate one run.json and check that it belongs where it lies (:func:`check_belongs`).

    Anything wrong with the file (not readable, not UTF-8, not JSON, a wrong shape or field, a newer schema, another
    grid point's record) raises one TableError naming the file and the field.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise TableError(f"{path}: cannot be read ({error.strerror or error}): check the path") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise TableError(
            f"{path}: not UTF-8 text (byte {raw[error.start]:#04x} at offset {error.start}), so not a run record:"
            " delete it or rerun the run"
        ) from None
    except json.JSONDecodeError as error:
        raise TableError(
            f"{path}: not valid JSON ({error.msg.removesuffix(' at')} at line {error.lineno}):"  # "...character at"
            " delete it or rerun the run"
        ) from None
    except (ValueError, RecursionError) as error:  # an integer of over 4300 digits; nesting deeper than the stack
        raise TableError(f"{path}: not a JSON record this reader can hold ({error}): delete it or rerun") from None
    try:
        record = RunRecord.from_dict(data, source=str(path))
        check_belongs(record, path)
    except RecursionError:  # validating, scrubbing and hashing walk the config recursively
        raise TableError(f"{path}: nested too deeply to be a run record: delete it or rerun the run") from None
    return record


def check_belongs(record: RunRecord, path: str | os.PathLike[str]) -> None:
    """Raise TableError unless ``record`` belongs at ``path``: ``<sweep>/<run_id>/run.json`` with its own sweep and
    run_id, and (from schema 2 on) a ``config_hash`` that is the hash of its ``config``.

    A finished record copied into another grid point's folder would otherwise make a relaunch skip that point and a
    table report its numbers under the wrong run; an edited config or hash would pass for a run that never was.
    """
    path = Path(path).absolute()  # not resolve(): a symlinked run folder keeps its name
    for field, value, folder in (("run_id", record.run_id, path.parent.name),
                                 ("sweep", record.sweep, path.parent.parent.name)):  # fmt: skip
        if value != folder:
            raise TableError(
                f"{path}: field {field}={value!r} but the record lies in folder {folder!r}: it is another grid"
                f" point's record; move it to <results>/{record.sweep}/{record.run_id}/ or delete it"
            )
    if record.schema_version >= CONFIG_HASHED_FROM_SCHEMA:
        expected = run_config_hash(record.config)
        if record.config_hash != expected:
            raise TableError(
                f"{path}: field config_hash={record.config_hash!r} is not the hash of the record's config"
                f" ({expected!r}): the record was edited; delete it and rerun the run"
            )


def set_aside(path: str | os.PathLike[str]) -> Path:
    """Rename a record file that cannot be used to ``run.json.rejected`` beside it (``run.json.rejected-2``, ... when
    taken) and return the new path: its grid point can run again and nothing is destroyed. Readers of the store
    look for ``run.json`` only, so the renamed file is never read as a record."""
    path = Path(path)
    aside, index = path.with_name(f"{path.name}.rejected"), 1
    while os.path.lexists(aside):
        index += 1
        aside = path.with_name(f"{path.name}.rejected-{index}")
    os.rename(path, aside)
    return aside


def paths_named(root: Path, *names: str) -> list[Path]:
    """Every path called one of ``names`` under ``root``, sorted: files, and folders too (a folder named run.json is
    a bad record the reader must report, not pass over). Safe while other processes write there: a folder that
    vanishes during the walk (a finished point's checkpoint folder, another command's write probe) is passed over,
    where ``Path.rglob`` would raise FileNotFoundError."""
    return sorted(
        Path(folder, name) for folder, dirs, files in os.walk(root) for name in (*dirs, *files) if name in names
    )


def _record_files(roots: Roots) -> list[Path]:
    if isinstance(roots, str | os.PathLike):
        roots = [roots]
    files: list[Path] = []
    for root in map(Path, roots):
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files.extend(paths_named(root, RECORD_FILENAME))
        else:
            raise TableError(f"{root}: no such results directory or run.json: pass a results root")
    unique = {path.resolve(): path for path in reversed(files)}  # a file under two named roots is read once
    return [unique[key] for key in dict.fromkeys(path.resolve() for path in files)]


def scan_record_files(roots: Roots) -> tuple[dict[Path, RunRecord], list[str]]:
    """Every usable record under one or several roots (searched recursively for run.json; each file once) by its
    path, and one entry per file that could not be read, validated or placed (:func:`read_record`): its path and
    error on one line. A root that does not exist raises TableError.
    """
    records, skipped = {}, []
    for path in _record_files(roots):
        try:
            records[path] = read_record(path)
        except TableError as error:
            skipped.append(" ".join(str(error).split()))  # one line each: the warning lists them on one line
    return records, skipped


def scan_records(roots: Roots) -> tuple[list[RunRecord], list[str]]:
    """:func:`scan_record_files` without the paths. :func:`load_records` is this with the skipped files as a warning."""
    records, skipped = scan_record_files(roots)
    return list(records.values()), skipped


def describe_skipped(skipped: list[str]) -> str:
    """``skipped N run record(s): <file>: <why>; ...``: the one line that lists the files a reader left out."""
    return f"skipped {len(skipped)} run record(s): " + "; ".join(skipped)


def warn_skipped(skipped: list[str]) -> None:
    """One :class:`SkippedRecordsWarning` listing every skipped file and why (nothing when none was skipped)."""
    if skipped:
        warnings.warn(describe_skipped(skipped), SkippedRecordsWarning, stacklevel=3)


def load_records(roots: Roots) -> list[RunRecord]:
    """Every usable record under one or several roots (searched recursively for run.json; each file once).

    Files that cannot be read, validated or placed (:func:`read_record`) are skipped, with one
    :class:`SkippedRecordsWarning` listing each file and its error. A root that does not exist raises TableError.
    """
    records, skipped = scan_records(roots)
    warn_skipped(skipped)
    return records


def _check_statuses(statuses: Iterable[str]) -> tuple[str, ...]:
    statuses = (statuses,) if isinstance(statuses, str) else tuple(statuses)
    unknown = [status for status in statuses if status not in STATUSES]
    if unknown:
        raise TableError(f"statuses={unknown} are not run statuses: choose among {', '.join(STATUSES)}")
    return statuses


def _config_value(config: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path of a nested config, or None where the path is absent."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _run_columns(record: RunRecord) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "sweep": record.sweep,
        "group": record.data_mix,
        "seed": record.seed,
        "data_seed": _config_value(record.config, "data.seed"),
        "n_params_total": record.n_params_total,
        "n_params_nonembed": record.n_params_nonembed,
        "n_params_active": record.n_params_active,
        "n_params_active_nonembed": record.n_params_active_nonembed,
        "n_experts": record.n_experts,
        "experts_per_token": record.experts_per_token,
        "granularity": record.granularity,
    }


def load_table(roots: Roots, statuses: Iterable[str] = ("finished",)) -> pd.DataFrame:
    """One row per (run, point) of the records whose status is in ``statuses``: the table the fitter reads.

    Columns are TABLE_COLUMNS; ``group`` is the data mix. learning_rate, batch_size (tokens per optimizer step)
    and schedule come from the record's config (CONFIG_COLUMNS) and are missing values where it has none.
    """
    return table_of(load_records(roots), statuses)


def table_of(records: Iterable[RunRecord], statuses: Iterable[str] = ("finished",)) -> pd.DataFrame:
    """:func:`load_table` of records already read (one read of the store feeds both the table and the curves)."""
    wanted = _check_statuses(statuses)
    rows = []
    for record in records:
        if record.status not in wanted:
            continue
        from_config = {column: _config_value(record.config, path) for column, path in CONFIG_COLUMNS.items()}
        for point in record.points:
            rows.append(
                {
                    **_run_columns(record),
                    "data_mix_hash": record.data_mix_hash,
                    "eval_suite_hash": record.eval_suite_hash,
                    "status": record.status,
                    "config_hash": record.config_hash,
                    "tied_embeddings": record.tied_embeddings,
                    "n_tokens": point.n_tokens,
                    "flops_6nd": point.flops_6nd,
                    "flops_exact": point.flops_exact,
                    "loss": point.loss,
                    "train_loss": point.train_loss,
                    **from_config,
                    **suite_columns(point),
                }
            )
    return _frame(rows, TABLE_COLUMNS)


def load_curves(roots: Roots, statuses: Iterable[str] = ("finished",)) -> pd.DataFrame:
    """One row per (run, intermediate evaluation) of the records whose status is in ``statuses``.

    Columns are CURVE_COLUMNS: the loss curves Chinchilla approach 1 takes the lower envelope of.
    """
    return curves_of(load_records(roots), statuses)


def curves_of(records: Iterable[RunRecord], statuses: Iterable[str] = ("finished",)) -> pd.DataFrame:
    """:func:`load_curves` of records already read."""
    wanted = _check_statuses(statuses)
    rows = [
        {
            **_run_columns(record),
            "n_tokens": point.n_tokens,
            "flops_6nd": point.flops_6nd,
            "flops_exact": point.flops_exact,
            "loss": point.loss,
            **suite_columns(point),
        }
        for record in records
        if record.status in wanted
        for point in record.curve
    ]
    return _frame(rows, CURVE_COLUMNS)


_DTYPES = {
    "n_params_total": "int64",
    "n_params_nonembed": "int64",
    "n_params_active": "int64",
    "n_params_active_nonembed": "int64",
    "n_experts": "int64",
    "experts_per_token": "int64",
    "granularity": "float64",
    "n_tokens": "int64",
    "tied_embeddings": "bool",
    "flops_6nd": "float64",
    "flops_exact": "float64",
    "loss": "float64",
    "train_loss": "float64",
    "learning_rate": "float64",
    "batch_size": "Int64",  # nullable: missing where the config has no batch size
    "seed": "int64",
    "data_seed": "Int64",  # nullable: missing where the config has no data seed
}


def _frame(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> pd.DataFrame:
    """Rows as a DataFrame with ``columns`` in order, then the eval-suite columns any row has (sorted), with stable
    dtypes (also when empty)."""
    extra = sorted({key for row in rows for key in row} - set(columns))
    frame = pd.DataFrame(rows, columns=[*columns, *extra])
    frame[extra] = frame[extra].astype("float64")
    for column in ("learning_rate", "batch_size", "data_seed"):  # config values that aren't numbers become missing
        if column in frame.columns:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame.astype({column: dtype for column, dtype in _DTYPES.items() if column in frame.columns})
