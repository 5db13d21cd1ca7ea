"""Data-mixing laws: an eval set's loss as a function of the training mixture's proportions (Ye et al. 2024).

    L_i(r) = c_i + k_i · exp(Σ_j t_ij · r_j)                     (Ye et al. 2024, eq. 1 with M domains)

with r the proportions of the M training domains (summing to one), fitted separately for each eval set i at one
model size and budget. Because Σ_j r_j = 1, adding one constant to every t_ij multiplies k_i by its exponential: the
law has c, k and M − 1 free exponents, and we fix the last domain's exponent to 0. With two domains that leaves three
parameters, L = c + k · exp(t · r_first): four mixes leave one degree of freedom, so a fit through them says little
about its own error; a mix left out and trained is the test (:func:`leave_one_out` gives the in-sample version).

Ye et al. combine such laws with scaling laws (their "nested" use) to pick a mixture at a larger budget from small
runs: fit the mixing law on each mix's *predicted* loss at that budget (:func:`fit_mixing_law` on any losses) and
minimise it over the simplex (:func:`best_mixture`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from scaling_lab.errors import FitError
from scaling_lab.fitting.estimate import Estimate
from scaling_lab.fitting.seeds import assign_budgets
from scaling_lab.planning.budget import INTERVAL_LEVEL

EXPONENT_STARTS = np.linspace(-8.0, 8.0, 9)
"""Starting exponents per free domain (the grid is their product): the fitted t of Ye et al. 2024's Pile domains lie
within ±8 per unit proportion."""


@dataclass(frozen=True, kw_only=True)
class MixingLaw:
    """One eval set's mixing law: L(r) = c + k · exp(Σ_j t_j r_j), the last t fixed at 0."""

    target: str
    """The eval set whose loss the law describes (or ``all``, the suite's union)."""
    domains: tuple[str, ...]
    """The training domains, in the order of ``t``."""
    c: float
    """The loss no mixture goes below (c ≥ 0)."""
    k: float
    """Scale of the mixture-dependent part (k > 0)."""
    t: tuple[float, ...]
    """Exponent per domain (per unit proportion); the last is 0 (the gauge)."""
    n_mixes: int
    """Mixtures fitted."""
    rms_residual: float
    """Root-mean-square residual of the fitted losses (loss units)."""

    def predict(self, proportions: Mapping[str, float]) -> float:
        """The law's loss for a mixture given as domain → proportion (normalised to sum to one)."""
        shares = _shares(proportions, self.domains)
        return float(self.c + self.k * np.exp(shares @ np.asarray(self.t)))

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "domains": list(self.domains), "c": self.c, "k": self.k, "t": list(self.t),
                "n_mixes": self.n_mixes, "rms_residual": self.rms_residual}  # fmt: skip

    def report(self) -> str:
        exponents = " + ".join(f"{t:.4g}·r_{domain}" for t, domain in zip(self.t, self.domains, strict=True))
        return (
            f"{self.target}: L = {self.c:.4g} + {self.k:.4g}·exp({exponents})  ({self.n_mixes} mixes, rms residual"
            f" {self.rms_residual:.3g})"
        )


def _shares(proportions: Mapping[str, float], domains: Sequence[str]) -> np.ndarray:
    unknown = sorted(set(proportions) - set(domains))
    if unknown:
        raise FitError(f"mixing law: domains {unknown} are not among the fitted ones ({', '.join(domains)})")
    shares = np.array([float(proportions.get(domain, 0.0)) for domain in domains])
    if (shares < 0).any() or shares.sum() <= 0:
        raise FitError(f"mixing law: proportions {dict(proportions)} must be non-negative and not all zero")
    return shares / shares.sum()


def fit_mixing_law(mixes: Sequence[Mapping[str, float]], losses: Sequence[float], *, target: str) -> MixingLaw:
    """Least squares on the losses from a grid of starting exponents (:data:`EXPONENT_STARTS`), c in [0, min loss)."""
    domains = tuple(sorted({domain for mix in mixes for domain in mix}))
    shares = np.array([_shares(mix, domains) for mix in mixes])
    observed = np.asarray(losses, dtype=float)
    free = len(domains) - 1
    if len(domains) < 2:
        raise FitError(f"mixing law for {target}: the mixes span one domain ({', '.join(domains)}): nothing to fit")
    if len(observed) < free + 2:
        raise FitError(f"mixing law for {target}: {len(observed)} mixes cannot fit {free + 2} parameters: train more")
    if not np.isfinite(observed).all() or (observed <= 0).any():
        raise FitError(f"mixing law for {target}: losses must be finite and positive, got {observed.tolist()}")
    floor = float(observed.min())

    def predicted(theta: np.ndarray) -> np.ndarray:  # theta = (c, log k, t_1 … t_{M-1})
        exponents = np.append(theta[2:], 0.0)
        return theta[0] + np.exp(theta[1]) * np.exp(shares @ exponents)

    best = None
    for start_t in itertools.product(EXPONENT_STARTS, repeat=free):
        for c0 in (0.0, 0.5 * floor, 0.9 * floor):
            scale = np.exp(shares[:, :-1] @ np.asarray(start_t))
            k0 = max(float(np.mean((observed - c0) / scale)), 1e-6)
            theta0 = np.array([c0, np.log(k0), *start_t])
            lower = np.array([0.0, -30.0, *[-50.0] * free])
            upper = np.array([floor * (1 - 1e-9), 30.0, *[50.0] * free])
            fitted = least_squares(lambda theta: predicted(theta) - observed, np.clip(theta0, lower, upper),
                                   bounds=(lower, upper), xtol=1e-14, ftol=1e-14, gtol=1e-14)  # fmt: skip
            if best is None or fitted.cost < best.cost:
                best = fitted
    theta = best.x
    residuals = predicted(theta) - observed
    return MixingLaw(target=target, domains=domains, c=float(theta[0]), k=float(np.exp(theta[1])),
                     t=(*map(float, theta[2:]), 0.0), n_mixes=len(observed),
                     rms_residual=float(np.sqrt(np.mean(residuals**2))))  # fmt: skip


def leave_one_out(mixes: Sequence[Mapping[str, float]], losses: Sequence[float], *, target: str) -> list[float]:
    """Relative error of predicting each mix from a law fitted on the others (needs one mix more than the fit)."""
    errors = []
    for index in range(len(mixes)):
        rest = [i for i in range(len(mixes)) if i != index]
        law = fit_mixing_law([mixes[i] for i in rest], [losses[i] for i in rest], target=target)
        errors.append(law.predict(mixes[index]) / float(losses[index]) - 1.0)
    return errors


def best_mixture(laws: Sequence[MixingLaw], weights: Sequence[float] | None = None, *, grid: int = 1001
                 ) -> tuple[dict[str, float], float]:  # fmt: skip
    """The mixture minimising the weighted sum of the laws' losses (two domains: a grid over the first one's share;
    more: the grid's points on the simplex), and that loss."""
    domains = laws[0].domains
    if any(law.domains != domains for law in laws):
        raise FitError("mixing law: the laws span different domains: fit them on the same mixes")
    weights = np.ones(len(laws)) / len(laws) if weights is None else np.asarray(weights, dtype=float)
    steps = np.linspace(0.0, 1.0, grid if len(domains) == 2 else 21)
    candidates = [np.array(point) for point in itertools.product(steps, repeat=len(domains) - 1) if sum(point) <= 1]
    best_loss, best_shares = np.inf, None
    for head in candidates:
        shares = dict(zip(domains, [*head, 1.0 - head.sum()], strict=True))
        loss = float(sum(w * law.predict(shares) for w, law in zip(weights, laws, strict=True)))
        if loss < best_loss:
            best_loss, best_shares = loss, shares
    return best_shares, best_loss


def mixture_of(config: Mapping[str, Any]) -> dict[str, float]:
    """A run config's training mixture as domain → proportion: each source counts under its embedded domain (or its
    name), weights normalised to sum to one."""
    sources = config.get("data", {}).get("sources") or []
    if not sources:
        raise FitError("mixing law: a record's config has no data.sources: it cannot say what its mixture was")
    shares: dict[str, float] = {}
    for source in sources:
        domain = source.get("domain") or source["name"]
        shares[domain] = shares.get(domain, 0.0) + float(source.get("weight", 1.0))
    total = sum(shares.values())
    return {domain: weight / total for domain, weight in sorted(shares.items())}


def mix_fit_tables(source: str | Path, groups: Sequence[str], *, target: str, metric: str = "loss") -> pd.DataFrame:
    """Every mix's fit table for one eval set and metric, read by the fitter's own loader (seeds averaged, exact
    FLOPs) from a results store or a table written by sl-collect, one ``group`` per mix."""
    from scaling_lab.fitting.table import TableConfig, load_input

    parts = [load_input(source, TableConfig(target=target, metric=metric, store_flops="exact", group=group)).points
             for group in groups]  # fmt: skip
    table = pd.concat(parts, ignore_index=True)
    table.attrs = dict(parts[0].attrs)
    return table


SLICE_GAP = 0.1
"""Points whose exact FLOPs lie within 10 % of their neighbour's belong to one isoFLOP slice: a WSD cooldown lands
within a step of its budget (under 3 % here), and the study's slices are 1.47× apart."""


def best_loss_per_slice(table: pd.DataFrame) -> pd.DataFrame:
    """The lowest loss of each (group, isoFLOP slice) of a fit table: the measured compute-optimal loss of each mix at
    each budget (columns group, slice, loss, flops). Slices are the fitter's budgets (``assign_budgets`` with a
    :data:`SLICE_GAP` gap) over the whole table, numbered by increasing C, so every mix shares the slice numbers."""
    labels = assign_budgets(table["flops"].to_numpy(dtype=float), SLICE_GAP)
    grouped = table.assign(slice=np.unique(labels, return_inverse=True)[1]).groupby(["group", "slice"], as_index=False)
    return grouped.agg(loss=("loss", "min"), flops=("flops", "median"))


def loss_at_budget(fits: Mapping[str, Any], flops: float) -> dict[str, Estimate]:
    """Each fitted law's loss at the compute-optimal point of a budget, solved along its own FLOPs, with the
    bootstrap interval of its samples (``fits``: name → planning.laws.LoadedLaw)."""
    out = {}
    for name, loaded in fits.items():
        value = float(loaded.law.loss_at_optimum(flops, loaded.per_token))
        samples = np.array([float(s.loss_at_optimum(flops, loaded.per_token)) for s in loaded.samples])
        out[name] = Estimate.from_samples(value, samples, INTERVAL_LEVEL) if len(samples) else Estimate(value)
    return out
