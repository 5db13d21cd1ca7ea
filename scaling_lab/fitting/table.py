"""The fit table: one row per (run, D-point) with canonical columns, read from a file or a results store.

Canonical columns (what every approach reads):
``n_params`` (N), ``n_tokens`` (D), ``loss``, ``flops`` (C; 6·N·D when the source has none),
``group`` (for example a data mix; "" when absent), ``run_id`` (rows of one run; "" when absent) and ``seed``
(the run's seed; 0 when absent). Rows sharing (group, N, D) are seeds of one point (fitting/seeds.py): the fit
table averages them (``table.seeds=mean``, with ``n_seeds`` and ``loss_sem``) or keeps them (``all``); the
per-seed rows stay in :attr:`FitInput.seed_points` for the seed bootstrap and the spread report. An optional
``loss_stderr`` column (the eval set's standard error of each loss) is carried when the file has one.
Which source columns became N, C and the loss are kept in ``table.attrs["n_params_column"]``, ``"loss_column"`` and
``table.attrs["flops_column"]`` so that every fit can say what it used (docs/ARCHITECTURE.md, "N" and "C").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from scaling_lab.budget import FlopsPerToken, fit_flops_per_token, flops_6nd
from scaling_lab.errors import ConfigError, TableError
from scaling_lab.fitting.seeds import check_mode, combine_curves, combine_points, with_run_tokens

STORE_N_PARAMS = {"total": "n_params_total", "nonembed": "n_params_nonembed", "active": "n_params_active",
                  "active_nonembed": "n_params_active_nonembed"}  # fmt: skip
"""Store column used as N. Default total: non-embedding counts bend the exponent at small scale
(Pearce & Song 2024). For a mixture of experts total counts every expert, active the top-k a token uses (the
compute per token); for a dense model active equals total."""

STORE_FLOPS = {"6nd": "flops_6nd", "exact": "flops_exact"}

METRICS = ("loss", "bpb")
"""What a store's loss column measures: nats per token, or bits per UTF-8 byte (comparable across tokenizers)."""

UNION = "all"
"""The eval suite's union: the target fitted by default (its loss is the store's ``loss`` column)."""
"""Store column used as C: 6·N·D (Kaplan et al. 2020) or the exact count (Hoffmann et al. 2022, App. F)."""

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True, kw_only=True)
class TableConfig:
    """How to read a table or a results store into the canonical fit table, and which rows to keep."""

    n_params_column: str = "n_params"
    """File input: the column holding N."""
    n_tokens_column: str = "n_tokens"
    """File input: the column holding D."""
    loss_column: str = "loss"
    """File input: the column holding the final eval loss at (N, D)."""
    flops_column: str = "flops"
    """File input: the column holding C; when the file has no such column C = 6·N·D."""
    group_column: str = "group"
    """File input: the column naming the group (for example a data mix); optional."""
    run_id_column: str = "run_id"
    """File input: the column naming the run; rows of one run with several D form its curve (approach 1)."""
    seed_column: str = "seed"
    """File input: the column holding the run's seed (integer; 0 for every row when the file has no such column)."""
    loss_stderr_column: str = "loss_stderr"
    """File input: the column holding the eval set's standard error of each loss (optional; reported beside the
    seed spread)."""
    seeds: str = "mean"
    """Rows sharing (N, D) are seeds of one point: ``mean`` fits their mean (one row per point), ``all`` fits
    every seed as a row."""
    store_n_params: str = "total"
    """Store input: N is ``total`` (n_params_total), ``nonembed`` (n_params_nonembed), ``active`` or
    ``active_nonembed`` (an MoE's parameters per token; the same as total / nonembed for dense runs)."""
    n_experts: int | None = None
    """Store input: keep only runs with this many experts (1: dense). Required when the store holds several."""
    store_flops: str = "6nd"
    """Store input: C is ``6nd`` (flops_6nd) or ``exact`` (flops_exact)."""
    target: str = UNION
    """Store input: the eval set whose loss is fitted: ``all`` (the eval suite's union) or a set's name (a domain)."""
    metric: str = "loss"
    """Store input: ``loss`` (nats per token) or ``bpb`` (bits per byte of the scored text, comparable across
    tokenizers)."""
    statuses: tuple[str, ...] = ("finished",)
    """Store input: run statuses kept."""
    group: str | None = None
    """Keep only this group. Required when the table holds several groups."""
    loss_max: float | None = None
    """Drop rows with loss above this (for example diverged or barely trained runs)."""
    flops_min: float | None = None
    """Drop rows with C below this."""
    flops_max: float | None = None
    """Drop rows with C above this."""
    n_params_min: float | None = None
    """Drop rows with N below this."""

    def __post_init__(self) -> None:
        if self.store_n_params not in STORE_N_PARAMS:
            raise ConfigError(
                f"table.store_n_params={self.store_n_params!r} is unknown: choose {' or '.join(STORE_N_PARAMS)}"
            )
        if self.store_flops not in STORE_FLOPS:
            raise ConfigError(f"table.store_flops={self.store_flops!r} is unknown: choose {' or '.join(STORE_FLOPS)}")
        if self.metric not in METRICS:
            raise ConfigError(f"table.metric={self.metric!r} is unknown: choose {' or '.join(METRICS)}")
        check_mode(self.seeds)
        object.__setattr__(self, "statuses", tuple(self.statuses))

    @property
    def fits_target(self) -> bool:
        """Whether a target or metric other than the union's loss is asked for."""
        return (self.target, self.metric) != (UNION, "loss")

    def store_loss_column(self) -> str:
        """The store column holding the fitted loss: ``loss`` for the union's loss, else ``<metric>_<target>``."""
        return f"{self.metric}_{self.target}" if self.fits_target else "loss"


@dataclass(frozen=True, kw_only=True)
class FitInput:
    """What the fitter reads: the point table and, when there are any, per-run loss curves."""

    points: pd.DataFrame
    """Canonical fit table (module docstring): the seeds of each point averaged or kept, as ``table.seeds`` says."""
    curves: pd.DataFrame | None
    """Canonical table of loss curves (several n_tokens per run_id), or None; seeds as in ``points``."""
    source: str
    """The path read."""
    kind: str
    """``table`` (a CSV/Parquet file) or ``store`` (a results store directory)."""
    sweeps: tuple[str, ...] = field(default=())
    """Store input: the sweeps the rows came from."""
    seed_points: pd.DataFrame | None = None
    """Every seed of every point as a row (the table before averaging); None means ``points`` is that table."""
    seed_curves: pd.DataFrame | None = None
    """Every seed's curve (with ``run_tokens``, fitting/seeds.py); None means ``curves`` is that table."""
    seeds: str = "all"
    """How ``points`` and ``curves`` treat seeds: ``mean`` or ``all``."""

    def replicate_points(self) -> pd.DataFrame:
        """The per-seed point table (``points`` when no separate one was given)."""
        return self.points if self.seed_points is None else self.seed_points


def _read_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise TableError(f"input={path} does not exist: give a CSV/Parquet table or a results store directory")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise TableError(f"input={path} has an unknown suffix: use one of {', '.join(TABLE_SUFFIXES)}")
    try:
        return pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise TableError(f"input={path} cannot be read as a table: {error}") from error


def _labels(frame: pd.DataFrame, column: str) -> pd.Series | str:
    """A label column as plain strings, "" where missing (an empty CSV cell reads as NaN)."""
    if column not in frame.columns:
        return ""
    return frame[column].astype(object).where(frame[column].notna(), "").astype(str)


def canonicalize(frame: pd.DataFrame, config: TableConfig, source: str) -> pd.DataFrame:
    """Rename the configured columns to the canonical ones and fill the optional ones."""
    if frame.empty:
        raise TableError(f"{source}: the table is empty: it needs rows with n_params, n_tokens and loss")
    required = {
        "n_params": config.n_params_column,
        "n_tokens": config.n_tokens_column,
        "loss": config.loss_column,
    }
    for canonical, column in required.items():
        if column not in frame.columns:
            raise TableError(
                f"{source}: column {column!r} (for {canonical}) is missing; columns are "
                f"{', '.join(map(str, frame.columns))}: rename it or set table.{canonical}_column"
            )
    out = pd.DataFrame({canonical: frame[column] for canonical, column in required.items()})
    flops_source = config.flops_column if config.flops_column in frame.columns else None
    out["flops"] = frame[flops_source] if flops_source else np.nan
    out["group"] = _labels(frame, config.group_column)
    out["run_id"] = _labels(frame, config.run_id_column)
    out["seed"] = frame[config.seed_column] if config.seed_column in frame.columns else 0
    if config.loss_stderr_column in frame.columns:
        out["loss_stderr"] = frame[config.loss_stderr_column]
    out.attrs["n_params_column"] = config.n_params_column
    out.attrs["flops_column"] = flops_source or "6ND"
    out.attrs["loss_column"] = config.loss_column
    return out


def validate(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check N, D, loss (and C) are finite and positive; fill C = 6·N·D where absent. Returns a copy."""
    table = table.copy()
    for column in ("n_params", "n_tokens", "loss", "flops"):
        values = pd.to_numeric(table[column], errors="coerce")
        if column != "flops" and values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise TableError(
                f"{source}: column {column} has a missing or non-numeric value (row {row}): fix or drop it"
            )
        table[column] = values.astype(float)
    if table["flops"].isna().all():
        table["flops"] = flops_6nd(table["n_params"], table["n_tokens"])
    elif table["flops"].isna().any():
        row = int(np.flatnonzero(table["flops"].isna().to_numpy())[0])
        raise TableError(f"{source}: column flops has a missing value (row {row}): fill it or drop the column")
    for column in ("n_params", "n_tokens", "loss", "flops"):
        values = table[column].to_numpy()
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise TableError(
                f"{source}: column {column} must be finite and positive, row {row} has {values[row]}: fix or drop it"
            )
    seeds = pd.to_numeric(table["seed"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(seeds) | (seeds != np.round(seeds)) | (seeds < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise TableError(
            f"{source}: column seed must hold non-negative integers, row {row} has {table['seed'].iloc[row]!r}:"
            " fix it, or point table.seed_column at the seed column"
        )
    table["seed"] = seeds.astype(np.int64)
    if "loss_stderr" in table.columns:
        table["loss_stderr"] = pd.to_numeric(table["loss_stderr"], errors="coerce")  # missing → not known there
    return table


def apply_filters(table: pd.DataFrame, config: TableConfig, source: str) -> pd.DataFrame:
    """Keep the configured group and the rows inside the configured loss / compute / size limits."""
    groups = sorted(set(table["group"]))
    if config.group is not None:
        if config.group not in groups:
            raise ConfigError(f"table.group={config.group!r} is not in {source}: choose one of {', '.join(groups)}")
        table = table[table["group"] == config.group]
    elif len(groups) > 1:
        raise ConfigError(
            f"{source} holds {len(groups)} groups ({', '.join(groups)}): fit one at a time with table.group=<name>"
        )
    keep = np.ones(len(table), dtype=bool)
    if config.loss_max is not None:
        keep &= table["loss"].to_numpy() <= config.loss_max
    if config.flops_min is not None:
        keep &= table["flops"].to_numpy() >= config.flops_min
    if config.flops_max is not None:
        keep &= table["flops"].to_numpy() <= config.flops_max
    if config.n_params_min is not None:
        keep &= table["n_params"].to_numpy() >= config.n_params_min
    out = table[keep].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    if out.empty:
        raise TableError(f"{source}: no rows left after the table filters: loosen table.loss_max/flops_*/n_params_min")
    return out


def prepare(frame: pd.DataFrame, config: TableConfig, source: str) -> pd.DataFrame:
    """canonicalize → validate → filter: the one path from any frame to a fit table."""
    table = canonicalize(frame, config, source)
    attrs = dict(table.attrs)
    table = validate(table, source)
    table.attrs = attrs
    return apply_filters(table, config, source)


def check_one_eval_suite(frame: pd.DataFrame, source: str) -> None:
    """Refuse rows scored on different eval suites: their losses measure different text."""
    if "eval_suite_hash" not in frame.columns:
        return
    suites = sorted(set(frame["eval_suite_hash"].astype(object).where(frame["eval_suite_hash"].notna(), "none")))
    if len(suites) > 1:
        raise TableError(
            f"{source}: the runs were scored on {len(suites)} different eval suites ({', '.join(suites)}; 'none': "
            "records written before eval suites), so their losses measure different text: fit or compare runs of "
            "one suite (collect their sweeps separately, or rerun the others)"
        )


def _suite_of(frame: pd.DataFrame) -> str | None:
    """The one eval suite of a store frame's rows (:func:`check_one_eval_suite` refused several); None if unknown."""
    if "eval_suite_hash" not in frame.columns or frame["eval_suite_hash"].isna().all():
        return None
    return str(frame["eval_suite_hash"].dropna().iloc[0])


def _store_frame(frame: pd.DataFrame, config: TableConfig, source: str) -> pd.DataFrame:
    """Map a store DataFrame onto file-style columns by the store_n_params / store_flops / target / metric choices;
    rows of different eval suites are refused."""
    check_one_eval_suite(frame, source)
    frame = _one_expert_count(frame, config, source)
    loss_column = config.store_loss_column()
    if loss_column not in frame.columns:
        targets = sorted(column.removeprefix("loss_") for column in frame.columns if column.startswith("loss_"))
        raise TableError(
            f"{source}: no column {loss_column} for table.target={config.target} table.metric={config.metric}: "
            + (f"the eval sets are {', '.join(targets)}" if targets else "the runs predate per-set eval scores")
            + ": choose one of them, or target=all metric=loss"
        )
    out = pd.DataFrame(
        {
            "n_params": frame[STORE_N_PARAMS[config.store_n_params]],
            "n_tokens": frame["n_tokens"],
            "loss": frame[loss_column],
            "flops": frame[STORE_FLOPS[config.store_flops]],
            "group": frame["group"] if "group" in frame.columns else "",
            "run_id": frame["run_id"],
            "seed": frame["seed"] if "seed" in frame.columns else 0,
        }
    )
    return out


def _one_expert_count(frame: pd.DataFrame, config: TableConfig, source: str) -> pd.DataFrame:
    """The rows with ``table.n_experts`` experts; a law of N and D fits one expert count at a time."""
    if "n_experts" not in frame.columns:  # a table written before mixtures of experts: all dense
        return frame
    counts = sorted(int(e) for e in set(frame["n_experts"]))
    if config.n_experts is None:
        if len(counts) > 1:
            raise ConfigError(f"{source} holds runs with {', '.join(map(str, counts))} experts: fit one expert count"
                              " at a time with table.n_experts=<E> (1: dense), or fit them together with the MoE law"
                              " (scaling_lab.fitting.moe_law, scripts/moe_fit.py)")  # fmt: skip
        return frame
    if config.n_experts not in counts:
        raise ConfigError(f"table.n_experts={config.n_experts} is not in {source}: choose one of "
                          f"{', '.join(map(str, counts))}")  # fmt: skip
    return frame[frame["n_experts"] == config.n_experts]


def _from_store(root: Path, config: TableConfig) -> FitInput:
    try:
        from scaling_lab.results.store import curves_of, describe_skipped, scan_records, table_of, warn_skipped
    except ImportError as error:
        raise TableError(
            f"input={root} is a directory but scaling_lab.results.store is not available ({error}): "
            "give a CSV/Parquet table instead"
        ) from error
    records, skipped = scan_records(root)  # read once: the table and the curves come from the same records
    raw = table_of(records, statuses=config.statuses)
    if raw.empty:  # one error line, the skipped files in it
        unusable = f" ({describe_skipped(skipped)})" if skipped else ""
        raise TableError(
            f"input={root}: the results store has no runs with status {', '.join(config.statuses)}{unusable}"
        )
    warn_skipped(skipped)
    store_config = TableConfig(
        n_params_column="n_params",
        flops_column="flops",
        group=config.group,
        loss_max=config.loss_max,
        flops_min=config.flops_min,
        flops_max=config.flops_max,
        n_params_min=config.n_params_min,
    )
    points = prepare(_store_frame(raw, config, str(root)), store_config, str(root))
    points.attrs["n_params_column"] = STORE_N_PARAMS[config.store_n_params]
    points.attrs["flops_column"] = STORE_FLOPS[config.store_flops]
    points.attrs["loss_column"] = config.store_loss_column()
    points.attrs["eval_suite_hash"] = _suite_of(raw)
    curves_raw = curves_of(records, statuses=config.statuses)
    curves = None
    if not curves_raw.empty:
        curves_raw = curves_raw[curves_raw["run_id"].isin(set(raw["run_id"]))]
        if not curves_raw.empty:
            curves = prepare(_store_frame(curves_raw, config, f"{root} (curves)"), store_config, f"{root} (curves)")
            curves.attrs = dict(points.attrs)
    sweeps = tuple(sorted(set(raw["sweep"].astype(str)))) if "sweep" in raw.columns else ()
    return FitInput(points=points, curves=curves, source=str(root), kind="store", sweeps=sweeps)


def curves_from_points(points: pd.DataFrame) -> pd.DataFrame | None:
    """Rows sharing a run_id with several n_tokens are that run's curve (file input); None when there are none."""
    if (points["run_id"] == "").all():
        return None
    sizes = points.groupby("run_id")["n_tokens"].nunique()
    runs = set(sizes[sizes > 1].index) - {""}
    if not runs:
        return None
    curves = points[points["run_id"].isin(runs)].reset_index(drop=True)
    curves.attrs = dict(points.attrs)
    return curves


def _is_store_shaped(frame: pd.DataFrame, config: TableConfig) -> bool:
    """A table written by sl-collect carries the store's columns (n_params_total, flops_6nd, ...)."""
    store_columns = {STORE_N_PARAMS[config.store_n_params], STORE_FLOPS[config.store_flops], "n_tokens", "loss"}
    return config.n_params_column not in frame.columns and store_columns <= set(frame.columns)


def _file_table(path: Path, config: TableConfig, source: str) -> pd.DataFrame:
    frame = _read_file(path)
    if not _is_store_shaped(frame, config):
        if config.fits_target:
            raise ConfigError(
                f"{source}: table.target={config.target} table.metric={config.metric} apply to results stores and"
                " tables written by sl-collect: for your own table, name the loss column with table.loss_column"
            )
        return prepare(frame, config, source)
    if "status" in frame.columns:
        frame = frame[frame["status"].isin(config.statuses)]
    plain = TableConfig(
        group=config.group,
        loss_max=config.loss_max,
        flops_min=config.flops_min,
        flops_max=config.flops_max,
        n_params_min=config.n_params_min,
    )
    table = prepare(_store_frame(frame, config, source), plain, source)
    table.attrs["n_params_column"] = STORE_N_PARAMS[config.store_n_params]
    table.attrs["flops_column"] = STORE_FLOPS[config.store_flops]
    table.attrs["loss_column"] = config.store_loss_column()
    table.attrs["eval_suite_hash"] = _suite_of(frame)
    return table


def default_curves_path(path: Path) -> Path | None:
    """sl-collect writes OUT.parquet beside OUT_curves.parquet: the curves file of a table, when present."""
    candidate = path.with_name(f"{path.stem}_curves{path.suffix}")
    return candidate if candidate.exists() else None


def load_input(path: str | Path, config: TableConfig, curves_path: str | Path | None = None) -> FitInput:
    """Read a table file (CSV/Parquet) or a results store directory into a FitInput.

    File input: N, D, loss, C are the configured columns, or, for a table written by sl-collect, the store's
    columns chosen by ``store_n_params`` / ``store_flops``. Curves come from ``curves_path``, else from
    ``<stem>_curves<suffix>`` beside the table, else from rows sharing a run_id with several n_tokens.
    """
    path = Path(path)
    if path.is_dir():
        return with_seeds(_from_store(path, config), config.seeds)
    points = _file_table(path, config, str(path))
    curves_file = Path(curves_path) if curves_path is not None else default_curves_path(path)
    if curves_file is not None:
        curves = _file_table(curves_file, config, str(curves_file))
    else:
        curves = curves_from_points(points)
    return with_seeds(FitInput(points=points, curves=curves, source=str(path), kind="table"), config.seeds)


def with_seeds(data: FitInput, mode: str) -> FitInput:
    """``data`` (one row per seed) with its points and curves combined over seeds as ``mode`` says; the per-seed
    rows kept in ``seed_points`` and ``seed_curves``."""
    return replace(
        data,
        points=combine_points(data.points, mode),
        curves=combine_curves(data.curves, mode),
        seed_points=data.points,
        seed_curves=None if data.curves is None else with_run_tokens(data.curves),
        seeds=mode,
    )


def flops_per_token_of(points: pd.DataFrame, source: str) -> FlopsPerToken:
    """How the table counts C, as FLOPs per token against N (scaling_lab.budget.fit_flops_per_token): 6ND when C
    equals 6·N·D (as where it was filled in), else the exact count's function fitted on the table's own rows."""
    try:
        return fit_flops_per_token(points["n_params"].to_numpy(), points["n_tokens"].to_numpy(),
                                   points["flops"].to_numpy())  # fmt: skip
    except TableError as error:
        raise TableError(f"{source}: column {points.attrs.get('flops_column', 'flops')}: {error}") from error
