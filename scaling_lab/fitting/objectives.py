"""Robust fits of sums of power laws in log space: the one objective shared by approach 3 and Kaplan.

A law with k inputs X_1..X_k is

    L = E + sum_i A_i / X_i^alpha_i
    log L = LSE(e, a_1 - alpha_1 log X_1, ..., a_k - alpha_k log X_k),   E = exp(e), A_i = exp(a_i)

(Hoffmann et al. 2022, Appendix D.2, eq. in §3.3: the log-sum-exp form, fitted on log-loss residuals with a
Huber loss, δ = 1e-3, from a grid of starts with L-BFGS). Parameters are packed as
theta = (e, a_1, alpha_1, ..., a_k, alpha_k).

Why the care (Besiroglu et al. 2024, §3 and Appendix): objectives are of order 1e-3, so scipy's default
absolute tolerances stop almost at once; we rescale the objective to order 1 before polishing and use tight
tolerances, and report which objective produced every estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from scaling_lab.errors import FitError
from scaling_lab.fitting.threads import single_threaded_blas

OBJECTIVES = ("huber", "least_squares", "least_squares_loss")
"""Huber(δ) (Chinchilla) or plain r² on log-loss residuals r = log L_pred - log L_obs; or ``least_squares_loss``,
plain r² on loss residuals r = L_pred - L_obs (the variable-projection objective of Czech et al. 2026). In log space
every point counts by its relative error; in loss space by its absolute error, so high-loss points (small models,
few tokens) weigh more, by their loss squared, and nothing caps an outlier's pull as Huber does."""

# Bounds for L-BFGS-B: exponents stay non-negative (a negative exponent is not a scaling law) and below 10;
# log-coefficients are kept finite. These are loose enough never to bind on a real fit.
EXPONENT_BOUNDS = (0.0, 10.0)
LOG_COEF_BOUNDS = (-50.0, 80.0)
LOG_E_BOUNDS = (-20.0, 10.0)

# Tight tolerances on the objective rescaled to order 1 (see module docstring). A start counts as converged
# when L-BFGS-B reports success with these.
FTOL = 1e-13
GTOL = 1e-10
MAXITER = 5_000


def residuals_of(pred: np.ndarray, log_loss: np.ndarray, objective: str) -> tuple[np.ndarray, np.ndarray]:
    """Residuals r of predicted log losses ``pred`` for ``objective`` and their derivative dr/dpred."""
    if objective == "least_squares_loss":
        predicted = np.exp(pred)
        return predicted - np.exp(log_loss), predicted
    return pred - log_loss, np.ones_like(pred)


def rho(residuals: np.ndarray, objective: str, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-residual loss and its derivative: Huber(δ) = r²/2 inside |r| ≤ δ, δ(|r| - δ/2) outside."""
    if objective != "huber":
        return 0.5 * residuals**2, residuals
    absr = np.abs(residuals)
    clipped = np.minimum(absr, delta)  # m(|r| - m/2) is r²/2 inside and δ(|r| - δ/2) outside
    return clipped * (absr - 0.5 * clipped), np.copysign(clipped, residuals)


def log_prediction(theta: np.ndarray, log_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log L for parameters theta (..., 1+2k) at inputs log_x (k, n); also the softmax weights (..., k+1, n).

    The weights are d log L / d(term), the gradient of the log-sum-exp with respect to each of its terms.
    """
    theta = np.asarray(theta, dtype=float)
    k, n = log_x.shape
    terms = np.empty((*theta.shape[:-1], k + 1, n))  # (..., k+1, n): e, then a_i - alpha_i log X_i
    terms[..., 0, :] = theta[..., 0:1]
    terms[..., 1:, :] = theta[..., 1::2, None] - theta[..., 2::2, None] * log_x
    top = terms.max(axis=-2, keepdims=True)
    shifted = np.exp(terms - top)
    total = shifted.sum(axis=-2, keepdims=True)
    return (top + np.log(total))[..., 0, :], shifted / total


def objective_values(
    thetas: np.ndarray, log_x: np.ndarray, log_loss: np.ndarray, objective: str, delta: float, chunk: int = 512
) -> np.ndarray:
    """The objective (sum over points) at many parameter vectors thetas (m, 1+2k), vectorised in chunks."""
    out = np.empty(len(thetas))
    for start in range(0, len(thetas), chunk):
        pred, _ = log_prediction(thetas[start : start + chunk], log_x)
        out[start : start + chunk] = rho(residuals_of(pred, log_loss, objective)[0], objective, delta)[0].sum(axis=-1)
    return out


def objective_and_gradient(
    theta: np.ndarray, log_x: np.ndarray, log_loss: np.ndarray, objective: str, delta: float
) -> tuple[float, np.ndarray]:
    """The objective (sum over points) and its analytic gradient at one parameter vector."""
    pred, weights = log_prediction(theta, log_x)  # (n,), (k+1, n)
    residuals, slope = residuals_of(pred, log_loss, objective)
    value, drho = rho(residuals, objective, delta)
    grad = np.empty_like(theta)
    weighted = weights * drho * slope  # (k+1, n)
    grad[0] = weighted[0].sum()
    grad[1::2] = weighted[1:].sum(axis=-1)
    grad[2::2] = -(weighted[1:] * log_x).sum(axis=-1)
    return float(value.sum()), grad


def bounds_for(k: int) -> list[tuple[float, float]]:
    """L-BFGS-B bounds for theta = (e, a_1, alpha_1, ..., a_k, alpha_k)."""
    return [LOG_E_BOUNDS] + [LOG_COEF_BOUNDS, EXPONENT_BOUNDS] * k


@dataclass(frozen=True, kw_only=True)
class Polished:
    """The outcome of a multi-start fit."""

    theta: np.ndarray
    """Best parameter vector (e, a_1, alpha_1, ...)."""
    value: float
    """Objective at theta (sum over points, unscaled)."""
    n_starts: int
    """Starts screened (the objective evaluated at each)."""
    n_polished: int
    """Best-screened starts polished with L-BFGS-B."""
    n_converged: int
    """Polished starts for which L-BFGS-B reported convergence at the tight tolerances."""
    converged: bool
    """Whether the best polished start converged."""
    best_starts: np.ndarray
    """The best-screened starts (rows of theta), best first: warm starts for a bootstrap."""


def fit_power_law_sum(
    log_x: np.ndarray,
    log_loss: np.ndarray,
    starts: np.ndarray,
    *,
    objective: str,
    delta: float,
    n_polish: int,
    extra_starts: np.ndarray | None = None,
) -> Polished:
    """Screen every start with the vectorised objective, then polish the best n_polish with L-BFGS-B.

    Screening all starts is cheap (one array expression); polishing only the best few keeps a full
    Chinchilla grid (4,500 starts) well under a second. ``n_polish >= len(starts)`` polishes every start,
    which is the plain reference loop. ``extra_starts`` (for example the full-data optimum inside a
    bootstrap) are always polished.
    """
    if objective not in OBJECTIVES:
        raise FitError(f"objective={objective!r} is unknown: choose one of {', '.join(OBJECTIVES)}")
    k = log_x.shape[0]
    screened = objective_values(starts, log_x, log_loss, objective, delta)
    order = np.argsort(screened, kind="stable")[: max(1, n_polish)]
    chosen = starts[order]
    if extra_starts is not None and len(extra_starts):
        chosen = np.concatenate([np.atleast_2d(extra_starts), chosen])
    # Rescale to order 1 so relative tolerances mean something (module docstring).
    scale = max(float(np.min(screened[order])), 1e-300)

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = objective_and_gradient(theta, log_x, log_loss, objective, delta)
        return value / scale, grad / scale

    bounds = bounds_for(k)
    low = np.array([b[0] for b in bounds])
    high = np.array([b[1] for b in bounds])
    best_theta, best_value, best_ok, n_converged = None, np.inf, False, 0
    with single_threaded_blas():
        for x0 in chosen:
            result = minimize(
                fun,
                np.clip(x0, low, high),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"ftol": FTOL, "gtol": GTOL, "maxiter": MAXITER, "maxcor": 20},
            )
            n_converged += bool(result.success)
            if np.isfinite(result.fun) and result.fun < best_value:
                best_theta, best_value, best_ok = result.x, float(result.fun), bool(result.success)
    if best_theta is None:
        raise FitError("every start of the fit gave a non-finite objective: check the table for extreme values")
    return Polished(
        theta=best_theta,
        value=best_value * scale,
        n_starts=len(starts),
        n_polished=len(chosen),
        n_converged=n_converged,
        converged=best_ok,
        best_starts=starts[order],
    )
