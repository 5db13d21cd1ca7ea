"""Run every requested approach on one fit input, check extrapolation, and write fit.json + report.txt.

fit.json (kept stable, other tools script against it)::

    {"schema_version": 1, "input": PATH, "input_kind": "table"|"store", "n_params_column": ..., "flops_column": ...,
     "flops_accounting": "6nd"|"exact", "flops_per_token": {...},   # the C every frontier is solved along
     "group": ..., "n_points": ..., "seeds": "mean"|"all", "n_seed_rows": ...,
     "seed_spread": {"n_points", "n_points_multi_seed", "max_seeds", "range_mean", "range_max", "range_mean_pct",
                     "range_max_pct", "std_mean", "std_mean_pct", ["eval_stderr", "eval_stderr_pct"],
                     "slice_by": "flops"|"n_params", "slices": [...]} (or "note" for one seed per point),
     "bootstrap": {..., "by": the unit used ("auto" resolved)} | null,
     "approach3": {...}, "approach2": {...}, "approach1": {...}, "kaplan": {...},   # those that ran
     "agreement": {...},   # a of every approach, its interval, non-overlapping pairs and their causes
     "extrapolation": {...}, "skipped": {approach: reason}}

fit.json written before ``flops_accounting`` existed is 6ND throughout.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scaling_lab.atomic import write_text_atomically
from scaling_lab.budget import FlopsPerToken
from scaling_lab.errors import ConfigError, FitError, TableError
from scaling_lab.fitting import bootstrap
from scaling_lab.fitting.agreement import Agreement, agreement
from scaling_lab.fitting.approach1 import Approach1Config, Approach1Result, fit_approach1
from scaling_lab.fitting.approach2 import Approach2Config, Approach2Result, fit_approach2
from scaling_lab.fitting.approach3 import Approach3Config, Approach3Result, fit_approach3
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.kaplan import KaplanConfig, KaplanResult, fit_kaplan
from scaling_lab.fitting.laws import ChinchillaLaw
from scaling_lab.fitting.seeds import (
    RUN_COLUMNS,
    assign_budgets,
    average_curves,
    average_points,
    max_seeds,
    seed_spread,
    spread_lines,
)
from scaling_lab.fitting.table import FitInput, flops_per_token_of

SCHEMA_VERSION = 1
APPROACHES = ("approach3", "approach2", "approach1", "kaplan")


@dataclass(frozen=True, kw_only=True)
class ExtrapolationConfig:
    """Hold out the largest compute budget(s), fit approach 3 on the rest, predict the held-out losses."""

    holdout_budgets: int = 1
    """Largest budgets held out (0 turns the check off)."""
    budget_rtol: float = 0.05
    """Points whose C differ by less than this (relative) share a budget."""


@dataclass(frozen=True, kw_only=True)
class FitConfig:
    """Everything one fit needs beyond the input."""

    approaches: tuple[str, ...] = APPROACHES
    """Approaches to run."""
    approach3: Approach3Config = field(default_factory=Approach3Config)
    """Approach 3 settings."""
    approach2: Approach2Config = field(default_factory=Approach2Config)
    """Approach 2 settings."""
    approach1: Approach1Config = field(default_factory=Approach1Config)
    """Approach 1 settings."""
    kaplan: KaplanConfig = field(default_factory=KaplanConfig)
    """Kaplan settings."""
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    """Bootstrap settings (n_resamples=0: no intervals)."""
    extrapolation: ExtrapolationConfig = field(default_factory=ExtrapolationConfig)
    """Extrapolation check settings."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "approaches", tuple(self.approaches))
        unknown = [a for a in self.approaches if a not in APPROACHES]
        if unknown:
            raise ConfigError(f"approaches has unknown {', '.join(unknown)}: choose among {', '.join(APPROACHES)}")
        if not self.approaches:
            raise ConfigError(f"approaches is empty: choose among {', '.join(APPROACHES)}")


@dataclass(frozen=True, kw_only=True)
class ExtrapolationCheck:
    """Approach 3 fitted without the largest budget(s), its prediction errors on the held-out points."""

    holdout_flops: tuple[float, ...]
    """The held-out budgets."""
    n_train: int
    """Points fitted."""
    n_heldout: int
    """Points predicted."""
    mean_abs_rel_error: float
    """Mean |predicted / measured − 1| over the held-out points."""
    max_abs_rel_error: float
    """Largest |predicted / measured − 1|."""
    mean_rel_error: float
    """Mean signed relative error (positive: the law predicts too high a loss)."""
    rmse_log_loss: float
    """Root mean square error in log loss."""
    law: ChinchillaLaw
    """The law fitted without the held-out budgets."""

    def to_dict(self) -> dict[str, Any]:
        """fit.json's ``extrapolation`` object."""
        return {**{f.name: getattr(self, f.name) for f in fields(self) if f.name != "law"},
                "holdout_flops": list(self.holdout_flops), "law": self.law.to_dict()}  # fmt: skip

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ExtrapolationCheck:
        numbers = {f.name: values[f.name] for f in fields(cls) if f.name not in ("law", "holdout_flops")}
        return cls(holdout_flops=tuple(values["holdout_flops"]), law=ChinchillaLaw.from_dict(values["law"]), **numbers)

    def report(self) -> str:
        """The report's section."""
        return "\n".join([
            "[[Extrapolation check (approach 3 without the largest budgets)]]",
            f"    held out     = {self.n_heldout} points at C = {', '.join(f'{c:.3g}' for c in self.holdout_flops)}",
            f"    |rel. error| = mean {self.mean_abs_rel_error:.4g}, max {self.max_abs_rel_error:.4g}",
        ])  # fmt: skip


FitResult = Approach3Result | Approach2Result | Approach1Result | KaplanResult
"""What one approach produced."""

RESULT_TYPES: dict[str, type[FitResult]] = {
    "approach3": Approach3Result,
    "approach2": Approach2Result,
    "approach1": Approach1Result,
    "kaplan": KaplanResult,
}
"""The result type of each approach (fit.json's object of that name), in the report's order."""


@dataclass(frozen=True, kw_only=True)
class FitOutcome:
    """What a fit produced: the result of every approach that ran, skips with reasons, the agreement of the
    approaches and the extrapolation check; ``to_dict`` is fit.json and ``report`` is report.txt."""

    results: dict[str, FitResult]
    """Result objects by approach name, in the order they ran."""
    skipped: dict[str, str]
    """Approach name → why it did not run."""
    extrapolation: ExtrapolationCheck | None
    """Held-out prediction errors, or None when off or impossible (reason in skipped)."""
    meta: dict[str, Any]
    """Input path and kind, columns used, FLOP accounting, group, point count, seed spread, bootstrap settings (the
    top of fit.json)."""
    agreement: Agreement | None = None
    """a of every approach with its interval, the causes of disagreement the data show, non-overlapping pairs."""

    def to_dict(self) -> dict[str, Any]:
        """fit.json's object."""
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, **self.meta}
        out.update({name: result.to_dict() for name, result in self.results.items()})
        if self.agreement is not None:
            out["agreement"] = self.agreement.to_dict()
        if self.extrapolation is not None:
            out["extrapolation"] = self.extrapolation.to_dict()
        out["skipped"] = dict(self.skipped)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FitOutcome:
        """A fit.json object of schema 1 (every version sl-fit wrote) as sl-fit's objects, intervals at the fit's
        ``bootstrap.level`` (0.95 where it was not recorded); keys this reader does not know stay in ``meta``. For
        fit.json that sl-fit wrote: the readers in laws.py check a file field by field and name what is wrong."""
        version = values.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise TableError(f"fit.json schema_version={version!r}: this reader knows {SCHEMA_VERSION}; rerun sl-fit")
        bootstrap_meta = values.get("bootstrap") or {}
        level, by = bootstrap_meta.get("level"), bootstrap_meta.get("by")
        results: dict[str, FitResult] = {}
        for name, result_type in RESULT_TYPES.items():
            if values.get(name) is None:
                continue
            if result_type is Approach2Result:
                results[name] = Approach2Result.from_dict(values[name], level, by)
            else:
                results[name] = result_type.from_dict(values[name], level)
        known = {"schema_version", *RESULT_TYPES, "agreement", "extrapolation", "skipped"}
        agreement_block, extrapolation_block = values.get("agreement"), values.get("extrapolation")
        return cls(
            results=results,
            skipped=dict(values.get("skipped") or {}),
            extrapolation=None if extrapolation_block is None else ExtrapolationCheck.from_dict(extrapolation_block),
            meta={key: value for key, value in values.items() if key not in known},
            agreement=None if agreement_block is None else Agreement.from_dict(agreement_block, level),
        )

    def report(self) -> str:
        """report.txt: how the fit was made, then each part's section (lmfit's fit_report in spirit)."""
        meta = self.meta
        lines = [
            "[[Fit]]",
            f"    input        = {meta['input']} ({meta['input_kind']})",
            f"    N column     = {meta['n_params_column']}",
            f"    C column     = {meta['flops_column']}",
            f"    loss column  = {_loss_line(meta.get('loss_column', 'loss'))}",
            f"    FLOPs        = {_accounting_line(meta)}",
            f"    group        = {meta['group'] or '(none)'}",
            f"    points       = {meta['n_points']}",
            f"    bootstrap    = {meta['bootstrap'] or 'off'}",
        ]
        if "seed_spread" in meta:
            lines.append(f"[[Seeds: rows sharing (N, D) are one point's seeds; fitted: {meta['seeds']}]]")
            lines += spread_lines(meta["seed_spread"])
        sections: list[Any] = [self.results[name] for name in RESULT_TYPES if name in self.results]
        sections += [part for part in (self.agreement, self.extrapolation) if part is not None]
        lines += [section.report() for section in sections]
        lines += [f"[[Skipped {name}]] {reason}" for name, reason in self.skipped.items()]
        return "\n".join(lines) + "\n"


def extrapolation_check(
    table: pd.DataFrame, approach3: Approach3Config, config: ExtrapolationConfig, per_token: FlopsPerToken | None = None
) -> ExtrapolationCheck:
    """Fit approach 3 without the largest ``holdout_budgets`` budgets and report the error on them."""
    labels = assign_budgets(table["flops"].to_numpy(), config.budget_rtol)
    budgets = np.unique(labels)
    if len(budgets) <= config.holdout_budgets + 1:
        raise FitError(f"extrapolation needs more than {config.holdout_budgets + 1} budgets, found {len(budgets)}")
    held = labels >= budgets[-config.holdout_budgets]
    train, test = table[~held].reset_index(drop=True), table[held].reset_index(drop=True)
    train.attrs = dict(table.attrs)
    law = fit_approach3(train, approach3, per_token=per_token).law
    predicted = law.loss(test["n_params"].to_numpy(), test["n_tokens"].to_numpy())
    relative = predicted / test["loss"].to_numpy() - 1.0
    return ExtrapolationCheck(
        holdout_flops=tuple(float(b) for b in budgets[-config.holdout_budgets :]),
        n_train=len(train),
        n_heldout=len(test),
        mean_abs_rel_error=float(np.mean(np.abs(relative))),
        max_abs_rel_error=float(np.max(np.abs(relative))),
        mean_rel_error=float(np.mean(relative)),
        rmse_log_loss=float(np.sqrt(np.mean(np.log1p(relative) ** 2))),
        law=law,
    )


def seed_bootstrap(data: FitInput, boot: BootstrapConfig) -> tuple[list[pd.DataFrame], list[pd.DataFrame] | None]:
    """The seed bootstrap's resamples, drawn once for every approach: each point's seeds drawn with replacement
    (then averaged when ``table.seeds=mean``), and each run's seeds likewise for the curves (None when no run has
    two seeds: approach 1 then resamples whole runs)."""
    mean = data.seeds == "mean"
    points = bootstrap.seed_resamples(data.replicate_points(), boot, combine=average_points if mean else None)
    runs = data.seed_curves
    if runs is None:
        return points, None
    strata = [c for c in RUN_COLUMNS if c in runs.columns]
    if runs.groupby(strata)["run_id"].nunique().max() < 2:
        return points, None
    combine = average_curves if mean else None
    return points, bootstrap.seed_resamples(runs, boot, strata=strata, unit="run_id", combine=combine)


def fit_input(data: FitInput, config: FitConfig) -> FitOutcome:
    """Run every requested approach; an approach that cannot run is skipped with its reason."""
    points, replicates = data.points, data.replicate_points()
    per_token = flops_per_token_of(points, data.source)
    boot = config.bootstrap if config.bootstrap.n_resamples > 0 else None
    resamples: list[pd.DataFrame] | None = None
    curve_resamples: list[pd.DataFrame] | None = None
    if boot is not None:
        boot = replace(boot, by=bootstrap.resolve_by(replicates, boot.by))
        if boot.by == "seed":
            if max_seeds(replicates) < 2:
                raise ConfigError(
                    f"bootstrap.by=seed: every (N, D) point of {data.source} has one seed: train several "
                    "(sl-train -m ... seed=0,1,2) or use bootstrap.by=point"
                )
            resamples, curve_resamples = seed_bootstrap(data, boot)
    results: dict[str, FitResult] = {}
    skipped: dict[str, str] = {}
    runners = {
        "approach3": lambda: fit_approach3(points, config.approach3, boot, resamples, per_token=per_token),
        "approach2": lambda: fit_approach2(points, config.approach2, boot, resamples),
        "approach1": lambda: _approach1(data, config, boot, curve_resamples),
        "kaplan": lambda: fit_kaplan(points, config.kaplan, boot, resamples),
    }
    for name in config.approaches:
        try:
            results[name] = runners[name]()
        except FitError as error:
            skipped[name] = str(error)
    if not results:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in skipped.items())
        raise FitError(f"{data.source}: no approach could be fitted ({reasons})")
    extrapolation = None
    if config.extrapolation.holdout_budgets > 0:
        try:
            extrapolation = extrapolation_check(points, config.approach3, config.extrapolation, per_token)
        except FitError as error:
            skipped["extrapolation"] = str(error)
    meta = {
        "input": data.source,
        "input_kind": data.kind,
        "sweeps": list(data.sweeps),
        "n_params_column": points.attrs.get("n_params_column", "n_params"),
        "flops_column": points.attrs.get("flops_column", "6ND"),
        "loss_column": points.attrs.get("loss_column", "loss"),
        "flops_accounting": per_token.accounting,
        "flops_per_token": per_token.to_dict(),
        "group": str(points["group"].iloc[0]),
        "n_points": len(points),
        "seeds": data.seeds,
        "n_seed_rows": len(replicates),
        "seed_spread": seed_spread(replicates, config.approach2.budget_rtol),
        "max_flops": float(points["flops"].max()),
        "n_curve_points": 0 if data.curves is None else len(data.curves),
        "bootstrap": None
        if boot is None
        else {"n_resamples": boot.n_resamples, "seed": boot.seed, "by": boot.by, "level": boot.level},
    }
    block = agreement(results, points, per_token, config.approach2, meta["seed_spread"].get("std_mean"))
    return FitOutcome(results=results, skipped=skipped, extrapolation=extrapolation, meta=meta, agreement=block)


def _approach1(
    data: FitInput, config: FitConfig, boot: BootstrapConfig | None, resamples: list[pd.DataFrame] | None
) -> Approach1Result:
    if data.curves is None:
        raise FitError("approach1 needs loss curves: a run_id column with several n_tokens per run, or a store")
    return fit_approach1(data.curves, config.approach1, boot, resamples)


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


def fit_json(outcome: FitOutcome) -> str:
    """fit.json's text."""
    return json.dumps(_finite(outcome.to_dict()), indent=2, allow_nan=False) + "\n"


def _accounting_line(meta: dict[str, Any]) -> str:
    """How the table counts C, as the report states it (frontiers are solved along that C)."""
    f = FlopsPerToken.from_dict(meta["flops_per_token"])
    if f.is_6nd:
        return "6nd: C = 6·N·D (C/D is within 1 % of 6N on every row)"
    linear = f"{f.per_param:g}·N + " if f.per_param else ""
    span = "" if f.n_params_range is None else f" fitted on N {f.n_params_range[0]:.3g}..{f.n_params_range[1]:.3g},"
    return f"exact: C/D = {linear}{f.overhead:.4g}·N^{f.exponent:.4g} ({span} max error {f.max_rel_error:.2%})"


def _loss_line(column: str) -> str:
    """What the fitted loss column measures, in words."""
    if column == "loss":
        return "loss (nats/token; on a store: the eval suite's union)"
    metric, _, target = column.partition("_")
    unit = {"loss": "nats/token", "bpb": "bits per byte"}.get(metric)
    return f"{column} ({unit} on eval set {target})" if unit else column


def report_text(outcome: FitOutcome) -> str:
    """report.txt's text (:meth:`FitOutcome.report`)."""
    return outcome.report()


def write_outputs(outcome: FitOutcome, out_dir: Path) -> tuple[Path, Path]:
    """Write DIR/fit.json and DIR/report.txt atomically; returns their paths."""
    out_dir = Path(out_dir)
    fit_path, report_path = out_dir / "fit.json", out_dir / "report.txt"
    text = fit_json(outcome)  # serialise fully before touching the directory
    write_text_atomically(report_path, report_text(outcome))
    write_text_atomically(fit_path, text)
    return fit_path, report_path
