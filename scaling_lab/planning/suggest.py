"""Next-run suggestions: which (N, D) run would shrink the interval of ``a`` (or of the predicted loss at a target
budget) the most per FLOP spent.

Method (an ensemble Kalman update, Evensen 1994; the linear-Gaussian case of Bayesian experimental design,
Chaloner & Verdinelli 1995). Treat the fit's bootstrap samples θ_s as draws of the uncertainty in the law. For a
candidate run x = (N, D) let f_s = log L_s(N, D) be what sample s predicts, and h_s the target quantity of sample s.
A new run measures y = log L(x) + ε with ε ~ N(0, σ²/repeats), σ the fit's residual standard deviation in log
loss. If (h, f) are jointly Gaussian over the ensemble — the same linearization that makes a refit of every
sample with the simulated point y_s = f_s + ε_s move it by a Kalman gain — the variance left after the run is

    Var(h | y) = Var(h) − Cov(h, f)² / (Var(f) + σ²/repeats).

A run helps when the samples disagree about its loss (Var(f) large against σ²) *and* that disagreement is tied to
the target (Cov(h, f)). The 95% interval width is taken as 2·1.96·sd, its shrink divided by the run's 6ND FLOPs
ranks the candidates. The linearization is the approximation: far outside the data, where samples fan out
non-linearly, the shrink is indicative, not exact; rerun the fit after each batch of new runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scaling_lab.budget import flops_6nd, flops_per_token_6n
from scaling_lab.errors import ConfigError, FitError
from scaling_lab.planning.laws import LoadedLaw

NORMAL_95 = 1.959964
"""Half-width of a central 95% normal interval in standard deviations."""

RANK_BY = ("shrink_per_flop", "shrink")
"""Orderings of :func:`rank_candidates`."""

MIN_SAMPLES = 20
"""Fewer bootstrap samples cannot estimate the 2x2 covariances the update needs."""


def residual_sd(loaded: LoadedLaw, table: pd.DataFrame) -> float:
    """Standard deviation of log(loss) − log(L(N, D)) over a fit table (columns n_params, n_tokens, loss)."""
    for column in ("n_params", "n_tokens", "loss"):
        if column not in table.columns:
            raise FitError(f"suggest: the table has no {column!r} column; pass the fit table the law was fitted on")
    predicted = loaded.law.loss(table["n_params"].to_numpy(float), table["n_tokens"].to_numpy(float))
    residuals = np.log(table["loss"].to_numpy(float)) - np.log(predicted)
    return float(np.std(residuals, ddof=1))


def _target_samples(loaded: LoadedLaw, target: str, target_flops: float | None) -> np.ndarray:
    if target == "a":
        return np.array([s.a for s in loaded.samples])
    if target == "loss":
        if target_flops is None or not target_flops > 0:
            raise ConfigError("suggest: target='loss' needs target_flops, the budget whose optimal loss to pin down")
        return np.array([float(s.loss_at_optimum(target_flops)) for s in loaded.samples])
    raise ConfigError(f"suggest: target={target!r} is unknown: choose 'a' or 'loss'")


def rank_candidates(
    loaded: LoadedLaw,
    candidates: pd.DataFrame,
    *,
    noise_sd: float,
    target: str = "a",
    target_flops: float | None = None,
    repeats: int = 1,
    rank_by: str = "shrink_per_flop",
) -> pd.DataFrame:
    """Rank candidate runs (columns n_params, n_tokens) by shrink of the 95% interval of the target per FLOP
    (``rank_by="shrink"`` ranks by the shrink alone, for a run whose cost is already accepted).

    Returns the candidates, best first, with ``flops`` (6ND), ``predicted_loss``, ``spread`` (sd of log loss over
    samples), ``width_before``, ``width_after``, ``shrink`` and ``shrink_per_flop``.
    """
    if rank_by not in RANK_BY:
        raise ConfigError(f"suggest: rank_by={rank_by!r} is unknown: choose one of {', '.join(RANK_BY)}")
    if len(loaded.samples) < MIN_SAMPLES:
        raise FitError(
            f"suggest: {loaded.source} has {len(loaded.samples)} bootstrap samples; refit with "
            f"bootstrap.n_resamples >= {MIN_SAMPLES}"
        )
    if not noise_sd > 0 or repeats < 1:
        raise ConfigError(f"suggest: noise_sd={noise_sd} must be > 0 and repeats={repeats} at least 1")
    n = candidates["n_params"].to_numpy(float)
    d = candidates["n_tokens"].to_numpy(float)
    h = _target_samples(loaded, target, target_flops)  # (S,)
    f = np.log(np.array([s.loss(n, d) for s in loaded.samples]))  # (S, K): log loss predicted by each sample
    h_centred, f_centred = h - h.mean(), f - f.mean(axis=0)
    var_h = h_centred @ h_centred / (h.size - 1)
    cov_hf = h_centred @ f_centred / (h.size - 1)  # (K,)
    var_f = np.einsum("sk,sk->k", f_centred, f_centred) / (h.size - 1)
    var_after = var_h - cov_hf**2 / (var_f + noise_sd**2 / repeats)
    width_before = 2 * NORMAL_95 * np.sqrt(var_h)
    width_after = 2 * NORMAL_95 * np.sqrt(np.maximum(var_after, 0.0))
    flops = flops_6nd(n, d) * repeats
    ranked = candidates.assign(
        flops=flops,
        predicted_loss=loaded.law.loss(n, d),
        spread=np.sqrt(var_f),
        width_before=width_before,
        width_after=width_after,
        shrink=width_before - width_after,
        shrink_per_flop=(width_before - width_after) / flops,
    )
    return ranked.sort_values(rank_by, ascending=False).reset_index(drop=True)


def candidate_grid(
    *, flops: np.ndarray, sizes_per_budget: int = 5, span_decades: float = 0.5, loaded: LoadedLaw
) -> pd.DataFrame:
    """IsoFLOP candidates (Hoffmann et al. 2022 §3.2): per budget, sizes log-spaced around the law's N_opt."""
    rows = []
    for budget in np.asarray(flops, dtype=float):
        centre = np.log10(float(loaded.law.n_opt(budget)))
        for log_n in np.linspace(centre - span_decades, centre + span_decades, sizes_per_budget):
            n = 10.0**log_n
            rows.append((n, budget / flops_per_token_6n(n)))
    return pd.DataFrame(rows, columns=["n_params", "n_tokens"])
