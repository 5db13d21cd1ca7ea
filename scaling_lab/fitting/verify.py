"""Is a fit's prediction right at a larger budget? Predicted against measured, on a slice trained there.

A fit (fit.json, written by sl-fit) predicts, at a budget C it has not seen, the compute-optimal size N_opt with an
interval (approaches 1, 2, 3) and the loss reachable there (approach 3). A *verification slice* trains a few sizes
at C with the sweep's recipe, several seeds each; this module compares the two, from tables, without torch:

* **Predictions** (:func:`predict`): approach 3's N_opt and loss are the minimum of its isoFLOP profile
  L(N, D = C / f(N)), with f the fit's own FLOPs per token (fit.json's ``flops_per_token``: 6N for 6ND, the fitted
  exact count otherwise), solved by the law's frontier (``n_opt(C, f)``; for f = 6N the closed form of Hoffmann et
  al. 2022, eq. 4), so N_opt is solved along the same C as the fit's; intervals are percentiles over the fit's
  bootstrap samples. Approaches 1 and 2 give N_opt = k_n C^a (intervals from their samples); they have no
  loss law, so their loss forecast is a power law L ∝ C^-γ through their own per-budget minima (approach 2) or
  lower envelope (approach 1), extrapolated to C (Kaplan et al. 2020, eq. 1.3, without an irreducible term), with
  no interval.
* **Measurement** (:func:`measure`): the seed mean of each size, a profile in log N through the means (approach 2's
  code: a parabola, a cubic or an Akima interpolant); the measured best loss is the profile's minimum when the sizes
  bracket it, otherwise the lowest mean (the result says which), and N_opt is the profile's minimum when bracketed.
* **Comparison** (:func:`compare`): relative error of the predicted best loss, and whether the measured N_opt lies
  inside each approach's interval.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scaling_lab.budget import FlopsPerToken
from scaling_lab.errors import ConfigError, FitError, TableError
from scaling_lab.fitting.approach2 import CURVES, MIN_SIZES, POLYNOMIAL_DEGREES, akima_minimum, profile_minimum
from scaling_lab.fitting.bootstrap import percentile_interval
from scaling_lab.fitting.estimate import Estimate
from scaling_lab.fitting.laws import (
    ChinchillaLaw,
    approach3_laws,
    fit_per_token,
    frontier_block,
    interval_level,
    read_fit_json,
    skipped_reasons,
)

SCHEMA_VERSION = 1
APPROACHES = ("approach3", "approach2", "approach1")
"""Approaches whose N_opt a verification checks (Kaplan's laws have no N_opt)."""
N_COLUMNS = ("n_params_total", "n_params_nonembed")
"""Which N a verifiable fit used: a store's counts (a plain table's N cannot be mapped onto model shapes)."""
FLOPS_COLUMNS = ("flops_exact", "flops_6nd", "6ND")
"""Which C a verifiable fit used: a store's exact or 6ND FLOPs, or 6·N·D computed from the fit's N."""
LOSS_FORECAST = "power law L ∝ C^-γ through the approach's per-budget minima"
LOSS_FORECAST_ENVELOPE = "power law L ∝ C^-γ through the approach's loss-vs-compute envelope"


def read_fit(path: str | Path) -> tuple[dict[str, Any], Path]:
    """fit.json (or a folder holding one) as a dict, and its path; TableError naming the file otherwise."""
    path = Path(path)
    if path.is_dir():
        path = path / "fit.json"
    if not path.is_file():
        raise TableError(f"fit_json={path} does not exist: give the fit.json that sl-fit wrote (or its folder)")
    return read_fit_json(path), path


def fit_accounting(fit: dict[str, Any], source: str) -> tuple[str, str, float]:
    """(N column, C column, largest fitted C) of a fit, checked to be ones a slice can be trained in."""
    n_column, flops_column, max_flops = fit.get("n_params_column"), fit.get("flops_column"), fit.get("max_flops")
    if n_column not in N_COLUMNS:
        raise TableError(
            f"{source}: n_params_column={n_column!r}: a verification trains model shapes, so the fit must use a "
            f"store's N ({' or '.join(N_COLUMNS)}): fit the results store (sl-fit input=results/<sweep>)"
        )
    if flops_column not in FLOPS_COLUMNS:
        raise TableError(
            f"{source}: flops_column={flops_column!r} is not one of {', '.join(FLOPS_COLUMNS)}: fit the results "
            "store (sl-fit input=results/<sweep>, optionally fit.table.store_flops=exact)"
        )
    if not (isinstance(max_flops, int | float) and math.isfinite(max_flops) and max_flops > 0):
        raise TableError(f"{source}: max_flops={max_flops!r} is missing or not positive: rerun sl-fit")
    return str(n_column), str(flops_column), float(max_flops)


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """One approach's forecast at the target budget."""

    approach: str
    """approach1, approach2 or approach3."""
    n_opt: Estimate
    """Predicted compute-optimal N at the target (the fit's N), with the percentile interval over the fit's bootstrap
    samples (none when fit.json has no samples for this approach)."""
    loss: Estimate | None
    """Predicted lowest loss at the target, with its interval where the samples give one; None when the approach
    cannot forecast it."""
    loss_method: str
    """How the loss was predicted."""
    level: float
    """Central probability of the fit's intervals (fit.json's ``ci_level`` or ``bootstrap.level``)."""

    def to_dict(self) -> dict[str, Any]:
        """verify.json's prediction: values and [low, high] intervals (null without one)."""
        loss = self.loss
        return {"approach": self.approach, "n_opt": self.n_opt.value, "n_opt_ci": _bounds(self.n_opt),
                "loss": None if loss is None else loss.value, "loss_ci": None if loss is None else _bounds(loss),
                "loss_method": self.loss_method, "level": self.level}  # fmt: skip


def _bounds(estimate: Estimate) -> list[float] | None:
    interval = estimate.interval
    return None if interval is None else list(interval)


def _estimate(value: float, samples: np.ndarray | None, level: float) -> Estimate:
    """The value with the percentile interval of the finite samples; no interval without one."""
    return Estimate(value) if samples is None else Estimate.from_samples(value, samples, level)


def _optimum(law: ChinchillaLaw, flops: float, per_token: FlopsPerToken) -> tuple[float, float]:
    """(N_opt, lowest loss) of a law at C along the fit's FLOP accounting; NaN where no optimum is found."""
    try:
        n_opt = float(law.n_opt(flops, per_token))
    except ValueError:  # no compute-optimal N within the solver's bracket
        return math.nan, math.nan
    return n_opt, float(law.loss(n_opt, flops / per_token(n_opt)))


def _approach3(fit: dict[str, Any], flops: float, source: str) -> Prediction:
    law, samples = approach3_laws(fit, source)
    per_token = fit_per_token(fit, source)
    n_opt, loss = _optimum(law, flops, per_token)
    if not (math.isfinite(n_opt) and n_opt > 0):
        raise FitError(f"approach3: no compute-optimal N at C={flops:.3g} in the fit's FLOP accounting")
    level = interval_level(fit, "approach3", source)
    sample_n = sample_loss = None
    if samples:
        sample_n, sample_loss = np.array([_optimum(s, flops, per_token) for s in samples]).T
    method = "minimum of the isoFLOP profile L(N, C / f(N)) of the fitted law"
    return Prediction(approach="approach3", n_opt=_estimate(n_opt, sample_n, level),
                      loss=_estimate(loss, sample_loss, level), loss_method=method, level=level)  # fmt: skip


def _power_law_forecast(flops: np.ndarray, loss: np.ndarray, target: float) -> float | None:
    """log L linear in log C, evaluated at the target; None with fewer than two distinct budgets."""
    flops, loss = np.asarray(flops, float), np.asarray(loss, float)
    keep = np.isfinite(flops) & np.isfinite(loss) & (flops > 0) & (loss > 0)
    if len(np.unique(flops[keep])) < 2:
        return None
    slope, intercept = np.polyfit(np.log(flops[keep]), np.log(loss[keep]), 1)
    return float(np.exp(intercept + slope * np.log(target)))


def _frontier_approach(name: str, fit: dict[str, Any], flops: float, source: str) -> Prediction | None:
    """Approaches 1 and 2: N_opt = k_n C^a, the loss by a power law through their own minima; None when the fit has
    no such approach."""
    block = frontier_block(fit, name, source)
    if block is None:
        return None
    n_opt = block.k_n * flops**block.a
    if not (math.isfinite(n_opt) and n_opt > 0):
        raise FitError(f"{name}: N_opt = k_n C^a is not a positive number at C={flops:.3g}")
    level = interval_level(fit, name, source)
    sample_n = np.array([k * flops**a for k, a in block.samples]) if block.samples else None
    method = LOSS_FORECAST if name == "approach2" else LOSS_FORECAST_ENVELOPE
    loss = _power_law_forecast(*np.array(block.minima).T, flops) if block.minima else None
    method = method if loss is not None else "none (fewer than two budgets)"
    return Prediction(approach=name, n_opt=_estimate(n_opt, sample_n, level),
                      loss=None if loss is None else Estimate(loss), loss_method=method, level=level)  # fmt: skip


def predict(fit: dict[str, Any], flops: float, *, source: str) -> tuple[
    dict[str, Prediction], dict[str, str]
]:  # fmt: skip
    """Every approach's forecast at C (approaches 3, 2, 1 where fit.json has them), and why others were skipped.

    FitError when no approach of the fit gives an N_opt.
    """
    predictions: dict[str, Prediction] = {}
    skipped: dict[str, str] = {}
    reasons = skipped_reasons(fit, source)
    for name in APPROACHES:
        try:
            if name == "approach3":
                prediction = _approach3(fit, flops, source) if fit.get(name) is not None else None
            else:
                prediction = _frontier_approach(name, fit, flops, source)
        except FitError as error:
            skipped[name] = str(error)
            continue
        if prediction is None:
            skipped[name] = f"not in the fit: {reasons[name]}" if reasons.get(name) else "not in the fit"
        else:
            predictions[name] = prediction
    if not predictions:
        reasons = "; ".join(f"{name}: {why}" for name, why in skipped.items())
        raise FitError(
            f"{source} has no approach with an N_opt ({reasons}): refit with approaches 1, 2 or 3 (sl-fit "
            "approaches=[approach3,approach2])"
        )
    return predictions, skipped


def approach3_profile(
    fit: dict[str, Any], flops: float, sizes: np.ndarray, *, source: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Approach 3's predicted isoFLOP profile L(N) at C over ``sizes``, and its bootstrap band (2 × len(sizes),
    the percentile interval at each size) when fit.json has samples, else None."""
    law, samples = approach3_laws(fit, source)
    tokens = flops / fit_per_token(fit, source)(sizes)
    centre = law.loss(sizes, tokens)
    if not samples:
        return centre, None
    level = interval_level(fit, "approach3", source)
    lines = np.array([s.loss(sizes, tokens) for s in samples])
    return centre, np.array([percentile_interval(column, level) for column in lines.T]).T


def planned_sizes(
    predictions: dict[str, Prediction], n_sizes: int, min_ratio: float, margin: float = 1.0
) -> np.ndarray:
    """Sizes spanning the predictions: from the smallest interval low end (or point estimate) divided by ``margin``
    to the largest high end times ``margin``, geometrically spaced; a span narrower than ``min_ratio`` between
    neighbours is widened about its centre (a parabola through sizes closer than the seed noise cannot locate a
    minimum)."""
    if n_sizes < 1:
        raise ConfigError(f"sizes={n_sizes} must be at least 1")
    ends = [value for p in predictions.values() for value in (p.n_opt.interval or (p.n_opt.value, p.n_opt.value))]
    ends += [p.n_opt.value for p in predictions.values()]
    low, high = min(ends) / margin, max(ends) * margin
    if n_sizes == 1:
        return np.array([math.sqrt(low * high)])
    wanted = min_ratio ** (n_sizes - 1)
    if high / low < wanted:
        centre = math.sqrt(low * high)
        low, high = centre / math.sqrt(wanted), centre * math.sqrt(wanted)
    return np.geomspace(low, high, n_sizes)


@dataclass(frozen=True, kw_only=True)
class Measured:
    """What the verification slice measured at the target."""

    sizes: list[dict[str, Any]]
    """Per size: n_params, loss_mean, loss_std (over seeds; 0 with one), n_seeds, losses, seeds, flops_mean."""
    curve: str | None
    """Profile fitted through the seed means (parabola or cubic in log N); None with too few sizes."""
    bracketed: bool
    """Whether the profile has a minimum strictly inside the sampled sizes."""
    n_opt: float | None
    """The profile's minimum when bracketed, else None."""
    n_opt_side: str
    """Where the optimum lies when not bracketed: ``below`` the smallest size, ``above`` the largest, or ""."""
    best_loss: float
    """The profile's minimum when bracketed, else the lowest seed mean."""
    best_loss_method: str
    """Which of the two: ``profile minimum`` or ``lowest mean (...)`` with the reason."""
    seed_n_opt: dict[str, float | None] = field(default_factory=dict)
    """Per seed: the N_opt of that seed's profile alone (None when not bracketed): how far seed noise moves it."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _profile(log_n: np.ndarray, loss: np.ndarray, curve: str) -> tuple[float, float, bool, str]:
    """(log N at the minimum, loss there, bracketed, side) of a profile, by approach 2's code for the curve; side says
    where an edge minimum lies."""
    order = np.argsort(log_n)
    log_n, loss = log_n[order], loss[order]
    if curve == "akima":  # approach 2 interpolates log loss (Porian et al. 2024)
        at, log_value, ok = akima_minimum(log_n, np.log(loss))
        best, value, bracketed = float(at), float(np.exp(log_value)), bool(ok)
    else:
        best, value, bracketed = profile_minimum(log_n, loss, POLYNOMIAL_DEGREES[curve])
    side = "" if bracketed else ("below" if best <= log_n.min() + 1e-12 else "above")
    return best, value, bracketed, side


def measure(slice_: pd.DataFrame, curve: str = "parabola") -> Measured:
    """The slice's per-size seed means, their profile and its minimum; ``slice_`` has n_params, loss, seed (and
    optionally flops) per run."""
    if curve not in CURVES:
        raise ConfigError(f"curve={curve!r} is unknown: choose one of {', '.join(CURVES)}")
    if slice_.empty:
        raise TableError("the verification slice has no finished runs: train it first (train=true)")
    sizes = []
    for n_params, rows in slice_.groupby("n_params", sort=True):
        losses = rows["loss"].to_numpy(dtype=float)
        sizes.append({
            "n_params": float(n_params), "loss_mean": float(losses.mean()),
            "loss_std": float(losses.std(ddof=1)) if len(losses) > 1 else 0.0, "n_seeds": len(losses),
            "losses": [float(v) for v in losses], "seeds": [int(s) for s in rows["seed"]],
            "flops_mean": float(rows["flops"].mean()) if "flops" in rows else None,
        })  # fmt: skip
    log_n = np.log([s["n_params"] for s in sizes])
    means = np.array([s["loss_mean"] for s in sizes])
    if len(sizes) < MIN_SIZES[curve]:
        lowest = int(np.argmin(means))
        method = f"lowest mean ({len(sizes)} sizes cannot fit a {curve})"
        return Measured(sizes=sizes, curve=None, bracketed=False, n_opt=None, n_opt_side="",
                        best_loss=float(means[lowest]), best_loss_method=method)  # fmt: skip
    best, value, bracketed, side = _profile(log_n, means, curve)
    seed_n_opt: dict[str, float | None] = {}
    for seed, rows in slice_.groupby("seed", sort=True):
        if rows["n_params"].nunique() == len(rows) >= MIN_SIZES[curve]:
            seed_best, _, seed_bracketed, _ = _profile(np.log(rows["n_params"].to_numpy(float)),
                                                       rows["loss"].to_numpy(float), curve)  # fmt: skip
            seed_n_opt[str(seed)] = float(np.exp(seed_best)) if seed_bracketed else None
    if bracketed:
        return Measured(sizes=sizes, curve=curve, bracketed=True, n_opt=float(np.exp(best)), n_opt_side="",
                        best_loss=value, best_loss_method="profile minimum", seed_n_opt=seed_n_opt)  # fmt: skip
    lowest = int(np.argmin(means))
    return Measured(sizes=sizes, curve=curve, bracketed=False, n_opt=None, n_opt_side=side,
                    best_loss=float(means[lowest]), seed_n_opt=seed_n_opt,
                    best_loss_method=f"lowest mean (the {curve}'s minimum lies {side} the sampled sizes)")  # fmt: skip


def compare(predictions: dict[str, Prediction], measured: Measured) -> dict[str, dict[str, Any]]:
    """Per approach: relative error of the predicted best loss, N ratio, and whether the measured N_opt is inside
    the interval (True/False; None when undecidable: no interval, or an unbracketed optimum the interval reaches)."""
    sizes = [s["n_params"] for s in measured.sizes]
    out = {}
    for name, p in predictions.items():
        row: dict[str, Any] = {"loss_rel_error": None, "n_opt_ratio": None, "n_opt_inside": None}
        interval = p.n_opt.interval
        if p.loss is not None:
            row["loss_rel_error"] = p.loss.value / measured.best_loss - 1.0
        if measured.n_opt is not None:
            row["n_opt_ratio"] = p.n_opt.value / measured.n_opt
            if interval is not None:
                row["n_opt_inside"] = bool(interval[0] <= measured.n_opt <= interval[1])
        elif measured.n_opt_side and interval is not None:
            # The optimum is known only to lie beyond an end of the slice: outside if the interval lies wholly on
            # the other side of that end.
            if measured.n_opt_side == "above" and interval[1] < max(sizes):
                row["n_opt_inside"] = False
            if measured.n_opt_side == "below" and interval[0] > min(sizes):
                row["n_opt_inside"] = False
        out[name] = row
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    """A verification: what was predicted, what was measured, how they compare, and how the slice was trained."""

    meta: dict[str, Any]
    """fit, store, target budget and accounting, the recipe, the planned points."""
    predictions: dict[str, Prediction]
    """Per approach."""
    skipped: dict[str, str]
    """Approaches without a prediction, with why."""
    measured: Measured | None
    """None for a dry run."""
    comparison: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per approach (see :func:`compare`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, **self.meta,
            "predictions": {name: p.to_dict() for name, p in self.predictions.items()},
            "skipped": dict(self.skipped),
            "measured": None if self.measured is None else self.measured.to_dict(),
            "comparison": self.comparison,
        }  # fmt: skip

    def report(self) -> str:
        """Plain text: the target, each approach's prediction and verdict, the slice."""
        meta = self.meta
        lines = [
            "[[Verification]]",
            f"    fit          = {meta['fit']}",
            f"    store        = {meta['store']} (recipe of {meta['n_recipe_runs']} runs)",
            f"    target C     = {meta['target_flops']:.4g} ({meta['flops_column']}; {meta['target_multiple']:.3g}× "
            f"the largest fitted budget {meta['fit_max_flops']:.4g})",
            f"    N            = {meta['n_params_column']}",
            f"    slice        = {meta['verify_sweep']}: {len(meta['planned'])} sizes × seeds {meta['seeds']}",
        ]
        lines += [f"    recipe       = {note}" for note in meta.get("recipe_notes", [])]
        lines.append("[[Predictions at the target]]")
        for name, p in self.predictions.items():
            loss = "n/a" if p.loss is None else p.loss.format(".4f")
            lines.append(f"    {name}: N_opt = {p.n_opt.format('.4g')}  loss = {loss}  ({p.loss_method})")
        for name, why in self.skipped.items():
            lines.append(f"    {name}: skipped: {why}")
        m = self.measured
        if m is None:
            lines.append("[[Measured]] not trained (dry run)")
            return "\n".join(lines) + "\n"
        lines.append(f"[[Measured: {len(m.sizes)} sizes, seed means]]")
        for s in m.sizes:
            lines.append(f"    N = {s['n_params']:.4g}: loss {s['loss_mean']:.4f} ± {s['loss_std']:.4f} (sd over "
                         f"{s['n_seeds']} seeds)")  # fmt: skip
        where = f"{m.n_opt:.4g}" if m.n_opt is not None else f"not bracketed ({m.n_opt_side or 'too few sizes'})"
        lines.append(f"    N_opt        = {where} ({m.curve or 'no'} profile in log N)")
        if m.seed_n_opt:
            per_seed = ", ".join(f"seed {k}: {_fmt(v, '.4g')}" for k, v in m.seed_n_opt.items())
            lines.append(f"    N_opt per seed = {per_seed}")
        lines.append(f"    best loss    = {m.best_loss:.4f} ({m.best_loss_method})")
        lines.append("[[Predicted against measured]]")
        for name, row in self.comparison.items():
            inside = {True: "inside", False: "OUTSIDE", None: "undecided"}[row["n_opt_inside"]]
            error = "n/a" if row["loss_rel_error"] is None else f"{row['loss_rel_error']:+.2%}"
            ratio = f" (predicted/measured N_opt = {row['n_opt_ratio']:.3g})" if row["n_opt_ratio"] else ""
            lines.append(f"    {name}: loss rel. error {error}; measured N_opt {inside} the interval{ratio}")
        return "\n".join(lines) + "\n"
