"""Do the approaches agree on a (N_opt ∝ C^a)? Each approach's a with its interval, and for every pair whose
intervals do not overlap, the known causes of disagreement that the data show.

The causes are the ones the literature names for small sweeps, each detected from the fit table:

* skewed profiles — isoFLOP profiles asymmetric around their minimum bias a parabola's minimum (Besiroglu et al.
  2024; Czech et al. 2026): a slice is skewed when the cubic term of a cubic in log N is significant;
* a minimum near the edge of the sampled sizes — a minimum beyond the second-smallest or second-largest size of
  its slice rests on one side's points only, and an envelope (approach 1) whose largest budget is reached by the
  largest size may have its optimum beyond the sampled sizes (Hoffmann et al. 2022, §3.2 sample around it);
* too few budgets — a power law fitted to fewer than 4 slices or less than a decade of C;
* seed noise — where points were repeated over seeds, a seed-to-seed spread (seeds.seed_spread) comparable to the
  loss differences between neighbouring sizes of a slice moves the minimum (two seeds of one quickstart point
  differed by up to 5 % of the loss).

a of approach 3 is read off its frontier in the table's own FLOPs at the table's budgets (laws.exponent_over), so
that it compares with approach 2's power law fitted at those budgets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from scaling_lab.budget import FlopsPerToken
from scaling_lab.fitting.approach2 import Approach2Config, isoflop_slices
from scaling_lab.fitting.approach3 import VpnlsFit
from scaling_lab.fitting.estimate import Estimate
from scaling_lab.fitting.laws import ChinchillaLaw
from scaling_lab.fitting.seeds import assign_budgets

APPROACHES_WITH_A = ("approach3", "approach3_vpnls", "approach2", "approach1")
"""Estimates of N_opt ∝ C^a (Kaplan's separate laws give none); approach3_vpnls is approach 3 by variable projection
(fit.approach3.method=vpnls), listed when it ran."""

SKEW_P_VALUE = 0.05
"""A slice is skewed when its cubic term's two-sided t-test gives p below this."""
MIN_BUDGETS = 4
"""Fewer usable isoFLOP slices than this leave a power law of C poorly pinned down."""
MIN_DECADES = 1.0
"""Less C range than this (in decades) likewise."""
SEED_NOISE_RATIO = 0.5
"""Seed noise is flagged when the mean seed-to-seed std of a point reaches this fraction of the median loss step between
neighbouring sizes of a slice: two draws then differ by ≥ 0.7 step (√2 · 0.5) in SD, enough to swap neighbours
near a minimum, where the steps are smaller than the median."""

CAUSES = {
    "skewed_profiles": "skewed profiles",
    "edge_minimum": "minimum near the edge of the sampled sizes",
    "few_budgets": "too few budgets",
    "seed_noise": "seed noise",
}
"""Cause keys and the words a report uses for them."""


@dataclass(frozen=True, kw_only=True)
class Cause:
    """A known cause of disagreement that the data show."""

    cause: str
    """Its key in :data:`CAUSES`."""
    applies_to: tuple[str, ...]
    """The approaches it biases."""
    detail: str
    """What in the data shows it."""

    def to_dict(self) -> dict[str, Any]:
        return {"cause": self.cause, "applies_to": list(self.applies_to), "detail": self.detail}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Cause:
        return cls(cause=values["cause"], applies_to=tuple(values["applies_to"]), detail=values["detail"])

    def describe(self) -> str:
        return f"{CAUSES[self.cause]} ({self.detail})"


@dataclass(frozen=True, kw_only=True)
class Disagreement:
    """Two approaches whose intervals for a do not overlap, and the causes in the data that apply to them."""

    pair: tuple[str, str]
    """The two approaches."""
    causes: tuple[str, ...]
    """Keys of the causes that apply to either, sorted."""
    line: str
    """The report's sentence."""

    def to_dict(self) -> dict[str, Any]:
        return {"pair": list(self.pair), "causes": list(self.causes), "line": self.line}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Disagreement:
        return cls(pair=tuple(values["pair"]), causes=tuple(values["causes"]), line=values["line"])


@dataclass(frozen=True, kw_only=True)
class Agreement:
    """a (N_opt ∝ C^a) of every approach with its interval, the causes of disagreement the data show, and every
    pair of approaches whose intervals do not overlap."""

    flops_accounting: str
    """The C every a is measured along (``6nd`` or ``exact``)."""
    exponents: dict[str, Estimate]
    """Approach → a, with its bootstrap interval (none without a bootstrap)."""
    judged: bool
    """Whether at least two approaches have intervals to compare."""
    causes: tuple[Cause, ...]
    """Every known cause the data show."""
    disagreements: tuple[Disagreement, ...]
    """Every non-overlapping pair."""

    def to_dict(self) -> dict[str, Any]:
        """fit.json's ``agreement`` object."""
        exponents = {name: {"a": e.value, "ci95": None if e.level is None else e.bounds()}
                     for name, e in self.exponents.items()}  # fmt: skip
        return {"flops_accounting": self.flops_accounting, "exponents": exponents, "judged": self.judged,
                "causes": [c.to_dict() for c in self.causes],
                "disagreements": [d.to_dict() for d in self.disagreements]}  # fmt: skip

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], level: float | None = None) -> Agreement:
        """fit.json's ``agreement`` object; its intervals at ``level`` (the fit's ``bootstrap.level``, else 0.95)."""
        exponents = {}
        for name, entry in values["exponents"].items():
            ci = entry.get("ci95")
            exponents[name] = Estimate(float(entry["a"])) if ci is None else Estimate(
                float(entry["a"]), *(float("nan") if v is None else float(v) for v in ci),
                0.95 if level is None else level)  # fmt: skip
        return cls(flops_accounting=values["flops_accounting"], exponents=exponents, judged=values["judged"],
                   causes=tuple(Cause.from_dict(c) for c in values["causes"]),
                   disagreements=tuple(Disagreement.from_dict(d) for d in values["disagreements"]))  # fmt: skip

    def report(self) -> str:
        """The report's section."""
        lines = [f"[[Agreement: N_opt ∝ C^a, C in {self.flops_accounting} FLOPs, bootstrap intervals]]"]
        lines += [f"    {name:<12} a = {e.value:.6g}{e.interval_text()}" for name, e in self.exponents.items()]
        lines += [f"    in the data: {c.describe()}" for c in self.causes]
        if not self.judged:
            lines.append("    not judged: fewer than two approaches have intervals (set bootstrap=N)")
        elif not self.disagreements:
            lines.append("    every pair of intervals overlaps")
        lines += [f"    DISAGREE: {d.line}" for d in self.disagreements]
        return "\n".join(lines)


def _cause(key: str, applies_to: tuple[str, ...] | list[str], detail: str) -> Cause:
    return Cause(cause=key, applies_to=tuple(applies_to), detail=detail)


def _slices(points: pd.DataFrame, config: Approach2Config) -> list[tuple[float, pd.DataFrame]]:
    """Approach 2's isoFLOP slices that have enough sizes to be fitted: (C, rows)."""
    return [(flops, rows) for flops, rows in isoflop_slices(points, config)
            if rows["n_params"].nunique() >= config.min_sizes]  # fmt: skip


def cubic_term_p_value(log_n: np.ndarray, loss: np.ndarray) -> float:
    """Two-sided p-value of the cubic coefficient of loss = cubic(log N) by least squares (1.0 without a residual
    degree of freedom). The standard error is floored at float precision: a profile that IS a parabola has a
    cubic coefficient of rounding size, not a significant one."""
    x = log_n - log_n.mean()
    design = np.vander(x, 4)
    dof = len(x) - 4
    if dof < 1:
        return 1.0
    coef, *_ = np.linalg.lstsq(design, loss, rcond=None)
    variance = float(np.sum((loss - design @ coef) ** 2)) / dof
    floor = 1e-12 * float(np.max(np.abs(loss)))
    stderr = max(float(np.sqrt(variance * np.linalg.pinv(design.T @ design)[0, 0])), floor)
    return float(2.0 * stats.t.sf(abs(coef[0]) / stderr, dof))


def _skew(slices: list[tuple[float, pd.DataFrame]]) -> Cause | None:
    p_values = [cubic_term_p_value(np.log(rows["n_params"].to_numpy(float)), rows["loss"].to_numpy(float))
                for _, rows in slices]  # fmt: skip
    skewed = sum(p < SKEW_P_VALUE for p in p_values)
    if not skewed:
        return None
    return _cause(
        "skewed_profiles",
        ["approach2"],
        f"{skewed} of {len(slices)} slices have a significant cubic term at p < {SKEW_P_VALUE:g}",
    )


def _edge(slices: list[tuple[float, pd.DataFrame]], results: Mapping[str, Any], points: pd.DataFrame
          ) -> list[Cause]:  # fmt: skip
    out = []
    fitted = {}
    r2 = results.get("approach2")
    if r2 is not None:
        fitted = {b.flops: b for b in r2.budgets if b.fitted}
    near = 0
    for flops, rows in slices:
        sizes = np.sort(rows["n_params"].unique())
        budget = fitted.get(flops)
        if budget is not None:  # approach 2's fitted minimum
            n_min, bracketed = budget.n_opt, budget.bracketed
        else:  # the lowest observed loss (approach 2 did not run)
            n_min, bracketed = float(rows.groupby("n_params")["loss"].mean().idxmin()), True
        if not bracketed or not sizes[1] <= n_min <= sizes[-2]:
            near += 1
    if near:
        out.append(
            _cause(
                "edge_minimum",
                ["approach2"],
                f"{near} of {len(slices)} slices have their minimum beyond the second size from an end",
            )
        )
    r1 = results.get("approach1")
    if r1 is not None and r1.envelope and r1.envelope[-1].n_params >= points["n_params"].max():
        out.append(_cause("edge_minimum", ["approach1"], "approach 1's envelope at its largest C is the largest size"))
    return out


def _few_budgets(slices: list[tuple[float, pd.DataFrame]]) -> Cause | None:
    flops = [c for c, _ in slices]
    decades = float(np.log10(max(flops) / min(flops))) if flops else 0.0
    if len(flops) >= MIN_BUDGETS and decades >= MIN_DECADES:
        return None
    return _cause(
        "few_budgets",
        APPROACHES_WITH_A,
        f"{len(flops)} slices over {decades:.2g} decades of C, want ≥ {MIN_BUDGETS} over ≥ {MIN_DECADES:g}",
    )


def neighbour_step(slices: list[tuple[float, pd.DataFrame]]) -> float:
    """Median |loss difference| between neighbouring sizes of a slice (seed means per size), over all slices."""
    steps = [np.abs(np.diff(rows.groupby("n_params")["loss"].mean().sort_index().to_numpy())) for _, rows in slices]
    return float(np.median(np.concatenate(steps))) if steps else float("nan")


def _seed(slices: list[tuple[float, pd.DataFrame]], seed_std: float | None) -> Cause | None:
    step = neighbour_step(slices)
    if seed_std is None or not seed_std >= SEED_NOISE_RATIO * step:
        return None
    return _cause("seed_noise", APPROACHES_WITH_A,
                  f"mean seed-to-seed std {seed_std:.3g} against a median loss step of {step:.3g} between neighbouring"
                  " sizes")  # fmt: skip


def detected_causes(points: pd.DataFrame, results: Mapping[str, Any], config: Approach2Config,
                    seed_std: float | None = None) -> list[Cause]:  # fmt: skip
    """Every known cause of disagreement the table shows. ``seed_std`` is
    the mean seed-to-seed standard deviation of a point (seeds.seed_spread's ``std_mean``; None with one seed)."""
    slices = _slices(points, config)
    found = [_skew(slices), *_edge(slices, results, points), _few_budgets(slices), _seed(slices, seed_std)]
    return [cause for cause in found if cause is not None]


def _law_exponent(law: ChinchillaLaw, samples: list[dict[str, float]] | None, budgets: np.ndarray,
                  per_token: FlopsPerToken, level: float | None) -> Estimate:  # fmt: skip
    """a of a fitted L(N, D) along the table's FLOPs at its budgets, with the percentile interval over samples."""
    a = law.exponent_over(budgets, per_token)
    if not samples:
        return Estimate(a)
    assert level is not None
    return Estimate.from_samples(a, [ChinchillaLaw(**s).exponent_over(budgets, per_token) for s in samples], level)


def exponents(results: Mapping[str, Any], points: pd.DataFrame, per_token: FlopsPerToken,
              config: Approach2Config) -> dict[str, Estimate]:  # fmt: skip
    """a and its interval (none without a bootstrap) of each approach that ran and estimates a."""
    budgets = np.unique(assign_budgets(points["flops"].to_numpy(), config.budget_rtol))
    out: dict[str, Estimate] = {}
    r3 = results.get("approach3")
    if r3 is not None:
        out["approach3"] = _law_exponent(r3.law, r3.bootstrap_samples, budgets, per_token, r3.level)
        vpnls = r3.vpnls
        if isinstance(vpnls, VpnlsFit):
            out["approach3_vpnls"] = _law_exponent(vpnls.estimates.law, vpnls.bootstrap_samples, budgets, per_token,
                                                   vpnls.estimates.level)  # fmt: skip
    for name in ("approach2", "approach1"):
        result = results.get(name)
        if result is not None:
            out[name] = result.a
    return out


def _describe(name: str, a: Estimate) -> str:
    return f"{name} a={a.value:.3g} [{a.low:.3g}, {a.high:.3g}]"


def agreement(results: Mapping[str, Any], points: pd.DataFrame, per_token: FlopsPerToken, config: Approach2Config,
              seed_std: float | None = None) -> Agreement:  # fmt: skip
    """Exponents, the causes the data show, and each non-overlapping pair with the causes that apply to it."""
    found = exponents(results, points, per_token, config)
    causes = detected_causes(points, results, config, seed_std)
    with_ci = [name for name, a in found.items() if a.interval is not None]
    disagreements = []
    for first, second in combinations(with_ci, 2):
        (low1, high1), (low2, high2) = found[first].bounds(), found[second].bounds()
        if low1 <= high2 and low2 <= high1:
            continue
        applying = [c for c in causes if first in c.applies_to or second in c.applies_to]
        why = "; ".join(c.describe() for c in applying)
        line = f"{_describe(first, found[first])} and {_describe(second, found[second])} do not overlap: " + (
            f"known causes in the data: {why}" if why else "no known cause detected in the data"
        )
        disagreements.append(Disagreement(pair=(first, second), causes=tuple(sorted({c.cause for c in applying})),
                                          line=line))  # fmt: skip
    return Agreement(flops_accounting=per_token.accounting, exponents=found, judged=len(with_ci) >= 2,
                     causes=tuple(causes), disagreements=tuple(disagreements))  # fmt: skip
