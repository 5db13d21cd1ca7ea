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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scaling_lab.atomic import write_text_atomically
from scaling_lab.budget import FlopsPerToken
from scaling_lab.errors import ConfigError, FitError
from scaling_lab.fitting import bootstrap
from scaling_lab.fitting.agreement import agreement, agreement_lines
from scaling_lab.fitting.approach1 import Approach1Config, fit_approach1
from scaling_lab.fitting.approach2 import Approach2Config, fit_approach2
from scaling_lab.fitting.approach3 import PARAMS, Approach3Config, fit_approach3
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.kaplan import KaplanConfig, fit_kaplan
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
class FitOutcome:
    """What a fit produced: results by approach (their to_dict form is fit.json), skips with reasons."""

    results: dict[str, Any]
    """Result objects by approach name (Approach3Result, Approach2Result, ...)."""
    skipped: dict[str, str]
    """Approach name → why it did not run."""
    extrapolation: dict[str, Any] | None
    """Held-out prediction errors, or None when off or impossible (reason in skipped)."""
    meta: dict[str, Any]
    """Input path and kind, columns used, FLOP accounting, group, point count, bootstrap settings."""
    agreement: dict[str, Any] | None = None
    """a of every approach with its interval, the causes of disagreement the data show, non-overlapping pairs."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, **self.meta}
        out.update({name: result.to_dict() for name, result in self.results.items()})
        if self.agreement is not None:
            out["agreement"] = self.agreement
        if self.extrapolation is not None:
            out["extrapolation"] = self.extrapolation
        out["skipped"] = dict(self.skipped)
        return out


def extrapolation_check(
    table: pd.DataFrame, approach3: Approach3Config, config: ExtrapolationConfig, per_token: FlopsPerToken | None = None
) -> dict[str, Any]:
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
    return {
        "holdout_flops": [float(b) for b in budgets[-config.holdout_budgets :]],
        "n_train": len(train),
        "n_heldout": len(test),
        "mean_abs_rel_error": float(np.mean(np.abs(relative))),
        "max_abs_rel_error": float(np.max(np.abs(relative))),
        "mean_rel_error": float(np.mean(relative)),
        "rmse_log_loss": float(np.sqrt(np.mean(np.log1p(relative) ** 2))),
        "law": law.to_dict(),
    }


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
    results: dict[str, Any] = {}
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
) -> Any:
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


def _interval(ci: dict[str, list[float]] | None, name: str) -> str:
    if not ci or name not in ci or ci[name][0] is None:
        return ""
    low, high = ci[name]
    return f"  [{low:.6g}, {high:.6g}]"


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
    """A plain-text report in the spirit of lmfit's fit_report: estimates, intervals, how they were fitted."""
    meta = outcome.meta
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
    r3 = outcome.results.get("approach3")
    if r3 is not None:
        lines += [
            "[[Approach 3: L(N, D) = E + A/N^alpha + B/D^beta]]",
            f"    objective    = {r3.objective} (delta={r3.delta:g}) on log-loss residuals",
            f"    objective at optimum = {r3.objective_value:.6g}",
            f"    points       = {r3.n_points}",
            f"    starts       = {r3.n_starts} screened, {r3.n_polished} polished, {r3.n_converged} converged",
        ]
        if not r3.flops_per_token.is_6nd:
            lines.append("    frontier     = solved along the table's exact FLOPs; a, b, G below are the law's 6ND"
                         " values (a along exact FLOPs: [[Agreement]])")  # fmt: skip
        for name in (*PARAMS, "a", "b", "G"):
            lines.append(f"    {name:<12} = {getattr(r3, name):.6g}{_interval(r3.ci95, name)}")
        for row in r3.frontier:
            ci = row.get("ci95")
            lines.append(
                f"    C={row['flops']:.3g}: N_opt={row['n_opt']:.4g}{_interval(ci, 'n_opt')}  "
                f"D_opt={row['d_opt']:.4g}{_interval(ci, 'd_opt')}  D/N={row['tokens_per_param']:.3g}"
                f"{_interval(ci, 'tokens_per_param')}  L={row['loss']:.4g}"
            )
        vp = r3.vpnls
        if vp is not None:
            lines.append("[[Approach 3 by variable projection (Czech et al. 2026), beside the multi-start fit]]")
            if "skipped" in vp:
                lines.append(f"    skipped      = {vp['skipped']}")
            else:
                lines += [
                    f"    objective    = {vp['objective']} (squared residuals of the loss itself: points count by"
                    f" absolute error; the multi-start fit above minimized {r3.objective})",
                    f"    objective at optimum = {vp['objective_value']:.6g}",
                    f"    grid         = {vp['grid']}: best alpha={vp['grid_alpha']:.4g}, beta={vp['grid_beta']:.4g}"
                    + (" (on the grid's edge)" if vp["at_grid_edge"] else "")
                    + f"; polished, converged={vp['converged']}",
                ]
                for name in (*PARAMS, "a", "b", "G"):
                    lines.append(f"    {name:<12} = {vp[name]:.6g}{_interval(vp.get('ci95'), name)}")
    r2 = outcome.results.get("approach2")
    if r2 is not None:
        lines += [
            f"[[Approach 2: per-budget {r2.curve} minima, N_opt ∝ C^a]]",
            f"    budgets      = {r2.n_budgets} used of {len(r2.budgets)}",
            f"    a            = {r2.a:.6g}{_interval(r2.ci95, 'a')}",
            f"    b            = {r2.b:.6g}{_interval(r2.ci95, 'b')}",
        ]
        if r2.seed_noise is not None:
            noise = r2.seed_noise
            lines.append(
                f"    seed noise   = std {noise['std'][0]:g} at loss {noise['loss'][0]:g} to {noise['std'][1]:g} at "
                f"{noise['loss'][1]:g}, {noise['resamples']} copies per slice; fits weighted by 1/std(log N*)²"
            )
        if r2.ci95 is not None and meta["bootstrap"]["by"] == "seed":
            lines.append("    bootstrap    = seeds within each point resampled, sizes kept (fixed design)")
        elif r2.ci95 is not None and r2.seed_noise is not None:
            lines.append("    bootstrap    = seed noise added to the losses, minima found again (Porian et al. 2024)")
        elif r2.ci95 is not None:
            lines.append("    bootstrap    = profile residuals resampled, sizes kept (fixed design)")
        few = [budget for budget in r2.budgets if "n_opt" not in budget]
        for budget in r2.budgets:
            if "n_opt" in budget:
                state = "used" if budget["used"] else f"excluded: {budget['reason']}"
                lines.append(
                    f"      C={budget['flops']:.3g}  sizes={budget['n_sizes']}  N_opt={budget['n_opt']:.4g}  {state}"
                )
        if few:
            lines.append(f"      {len(few)} budget(s) excluded for too few sizes (< {r2.min_sizes})")
        if r2.n_bootstrap_failed:
            lines.append(f"    bootstrap    = {r2.n_bootstrap_failed} resamples failed (a slice lost its bracket)")
    r1 = outcome.results.get("approach1")
    if r1 is not None:
        lines += [
            "[[Approach 1: loss-vs-compute envelope]]",
            f"    runs         = {r1.n_runs}, envelope points {r1.n_flops}, sizes on it {r1.n_sizes_on_envelope}",
            f"    a            = {r1.a:.6g}{_interval(r1.ci95, 'a')}",
            f"    b            = {r1.b:.6g}{_interval(r1.ci95, 'b')}",
        ]
    rk = outcome.results.get("kaplan")
    if rk is not None:
        lines.append(f"[[Kaplan: L(X) = E + A/X^alpha, objective {rk.objective}]]")
        for name, law in rk.laws.items():
            if "skipped" in law:
                lines.append(f"    {name}: skipped: {law['skipped']}")
                continue
            ci = (rk.ci95 or {}).get(name)
            lines.append(
                f"    {name}: E={law['E']:.5g}{_interval(ci, 'E')}  A={law['A']:.5g}  "
                f"alpha={law['alpha']:.5g}{_interval(ci, 'alpha')}  ({law['n_points']} points)"
            )
    if outcome.agreement is not None:
        lines += agreement_lines(outcome.agreement)
    ex = outcome.extrapolation
    if ex is not None:
        lines += [
            "[[Extrapolation check (approach 3 without the largest budgets)]]",
            f"    held out     = {ex['n_heldout']} points at C = {', '.join(f'{c:.3g}' for c in ex['holdout_flops'])}",
            f"    |rel. error| = mean {ex['mean_abs_rel_error']:.4g}, max {ex['max_abs_rel_error']:.4g}",
        ]
    for name, reason in outcome.skipped.items():
        lines.append(f"[[Skipped {name}]] {reason}")
    return "\n".join(lines) + "\n"


def write_outputs(outcome: FitOutcome, out_dir: Path) -> tuple[Path, Path]:
    """Write DIR/fit.json and DIR/report.txt atomically; returns their paths."""
    out_dir = Path(out_dir)
    fit_path, report_path = out_dir / "fit.json", out_dir / "report.txt"
    text = fit_json(outcome)  # serialise fully before touching the directory
    write_text_atomically(report_path, report_text(outcome))
    write_text_atomically(fit_path, text)
    return fit_path, report_path
