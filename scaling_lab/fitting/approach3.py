"""Chinchilla approach 3: fit L(N, D) = E + A/N^alpha + B/D^beta to every (N, D, loss) point.

Hoffmann et al. 2022, §3.3 and Appendix D.2: log-sum-exp form, Huber loss (δ = 1e-3) on log-loss residuals,
L-BFGS from a grid of 4,500 starts. Besiroglu et al. 2024 showed the published fit stopped early; we use tight
tolerances on a rescaled objective (see objectives.py) and report starts and converged starts.

``method="vpnls"`` adds variable projection (Czech et al. 2026) beside the multi-start fit: the law is linear in
(E, A, B) once (α, β) are fixed, so a 128 × 128 grid of (α, β) ∈ [0.01, 0.99]² (their reference code's grid) is
searched exhaustively, each point's (E, A, B) solved by non-negative least squares, and the best point polished in
all five parameters with the same L-BFGS-B as the multi-start fit. Its objective is theirs — least squares on the
loss itself (``least_squares_loss``) — not the Huber-on-log-loss default, so the two estimates can differ on real
data (objectives.py says how); on data drawn from the law both recover it.

Python API (the planner calls these)::

    result = fit_approach3(table, Approach3Config(), BootstrapConfig(n_resamples=1000, seed=0))
    result.law.n_opt(1e21); result.estimates.alpha.interval; result.bootstrap_samples  # [{E, A, ...}, ...]
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from scaling_lab.budget import SIX_ND, FlopsPerToken
from scaling_lab.errors import ConfigError, FitError
from scaling_lab.fitting import bootstrap
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.estimate import Estimate, estimates_from_samples, estimates_of, intervals_of
from scaling_lab.fitting.laws import ChinchillaLaw
from scaling_lab.fitting.objectives import OBJECTIVES, Polished, fit_power_law_sum
from scaling_lab.fitting.table import flops_per_token_of

PARAMS = ("E", "A", "B", "alpha", "beta")
"""The law's parameters, in fit.json order."""
FRONTIER = ("a", "b", "G")
"""Frontier quantities derived from the law (laws.py)."""

MIN_POINTS = 6
"""Fewer points than this cannot constrain five parameters (plus one to spare)."""


def chinchilla_start_grid() -> np.ndarray:
    """The 4,500 starts of Hoffmann et al. 2022, App. D.2 (as listed by Besiroglu et al. 2024, §2):
    alpha, beta ∈ {0, 0.5, …, 2}, e ∈ {-1, -0.5, …, 1}, a, b ∈ {0, 5, …, 25}.

    Rows are packed as theta = (e, a, alpha, b, beta) (objectives.py order).
    """
    exponents = np.arange(0.0, 2.01, 0.5)
    log_e = np.arange(-1.0, 1.01, 0.5)
    log_coefs = np.arange(0.0, 25.01, 5.0)
    grid = itertools.product(log_e, log_coefs, exponents, log_coefs, exponents)
    return np.array(list(grid), dtype=float)


START_GRIDS = {"chinchilla": chinchilla_start_grid}

METHODS = ("multistart", "vpnls")
"""``multistart``: the start grid only; ``vpnls``: variable projection reported beside it."""
VPNLS_OBJECTIVE = "least_squares_loss"
"""Variable projection minimizes squared loss residuals (Czech et al. 2026)."""
VPNLS_EXPONENTS = np.linspace(0.01, 0.99, 128)
"""The (α, β) grid of each axis (Czech et al. 2026's reference code, vpnls DEFAULT_EXPONENT_GRID)."""
_SUBSETS = [subset for size in (1, 2, 3) for subset in itertools.combinations(range(3), size)]


@dataclass(frozen=True, kw_only=True)
class Approach3Config:
    """How approach 3 fits."""

    objective: str = "huber"
    """``huber`` on log-loss residuals (Chinchilla) or ``least_squares`` on log loss."""
    delta: float = 1e-3
    """Huber δ on log-loss residuals (Hoffmann et al. 2022, App. D.2)."""
    starts: str = "chinchilla"
    """Start grid; ``chinchilla`` = the 4,500-point grid."""
    n_polish: int = 16
    """Best-screened starts polished with L-BFGS-B (every start is screened)."""
    bootstrap_n_polish: int = 0
    """Per bootstrap resample: the full-data optimum and this many of the best full-data grid starts are polished."""
    min_points: int = MIN_POINTS
    """Skip approach 3 with fewer points than this."""
    method: str = "multistart"
    """``multistart`` (the start grid) or ``vpnls``: also fit by variable projection (least squares on the loss,
    Czech et al. 2026) and report it beside the multi-start fit."""

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(
                f"approach3.objective={self.objective!r} is unknown: choose one of {', '.join(OBJECTIVES)}"
            )
        if not self.delta > 0:
            raise ConfigError(f"approach3.delta={self.delta} must be positive, for example 1e-3")
        if self.starts not in START_GRIDS:
            raise ConfigError(f"approach3.starts={self.starts!r} is unknown: choose one of {', '.join(START_GRIDS)}")
        if self.n_polish < 1 or self.bootstrap_n_polish < 0:
            raise ConfigError("approach3.n_polish must be at least 1 and approach3.bootstrap_n_polish at least 0")
        if self.method not in METHODS:
            raise ConfigError(f"approach3.method={self.method!r} is unknown: choose one of {', '.join(METHODS)}")


@dataclass(frozen=True, kw_only=True)
class FrontierPoint:
    """The compute-optimal allocation of a fitted law at one budget C, with bootstrap intervals when bootstrapped."""

    flops: float
    """The budget C, in the table's FLOP accounting."""
    n_opt: Estimate
    """Compute-optimal N."""
    d_opt: Estimate
    """Compute-optimal D."""
    tokens_per_param: Estimate
    """D_opt / N_opt."""
    loss: Estimate
    """The law's loss at (N_opt, D_opt)."""

    def to_dict(self) -> dict[str, Any]:
        """One row of fit.json's ``approach3.frontier``."""
        estimates = {name: getattr(self, name) for name in FRONTIER_POINT}
        out: dict[str, Any] = {"flops": self.flops, **{name: e.value for name, e in estimates.items()}}
        intervals = intervals_of(estimates)
        if intervals is not None:
            out["ci95"] = intervals
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], level: float | None) -> FrontierPoint:
        return cls(flops=float(values["flops"]), **estimates_of(values, FRONTIER_POINT, values.get("ci95"), level))

    def line(self) -> str:
        """The report's line."""
        return (
            f"    C={self.flops:.3g}: N_opt={self.n_opt.value:.4g}{self.n_opt.interval_text()}  "
            f"D_opt={self.d_opt.value:.4g}{self.d_opt.interval_text()}  D/N={self.tokens_per_param.value:.3g}"
            f"{self.tokens_per_param.interval_text()}  L={self.loss.value:.4g}"
        )


FRONTIER_POINT = ("n_opt", "d_opt", "tokens_per_param", "loss")
"""The estimates of a frontier point, in fit.json order."""


@dataclass(frozen=True, kw_only=True)
class LawEstimates:
    """A fitted L(N, D) = E + A/N^alpha + B/D^beta: its parameters and frontier (a, b, G; laws.py) as estimates."""

    E: Estimate
    """Irreducible loss."""
    A: Estimate
    """Model-size coefficient."""
    B: Estimate
    """Data-size coefficient."""
    alpha: Estimate
    """Exponent of N."""
    beta: Estimate
    """Exponent of D."""
    a: Estimate
    """Exponent of N_opt ∝ C^a along 6ND (derived)."""
    b: Estimate
    """Exponent of D_opt ∝ C^b along 6ND (derived)."""
    G: Estimate
    """Scale of the 6ND frontier (derived)."""

    @classmethod
    def of(cls, params: Mapping[str, float], samples: list[dict[str, float]] | None, level: float | None
           ) -> LawEstimates:  # fmt: skip
        """The law's parameters and frontier, with intervals over the bootstrap ``samples`` ({E, A, B, alpha, beta}
        each) when given."""
        full = [{**s, **frontier_of(s)} for s in samples or []]
        return cls(**estimates_from_samples({**params, **frontier_of(params)}, full, PARAMS + FRONTIER, level))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], level: float | None) -> LawEstimates:
        """Values at the top of ``values``, intervals in its ``ci95``; a, b, G derived when absent."""
        values = {**frontier_of({k: float(values[k]) for k in PARAMS}), **values}
        return cls(**estimates_of(values, PARAMS + FRONTIER, values.get("ci95"), level))

    @property
    def law(self) -> ChinchillaLaw:
        return ChinchillaLaw(**{name: getattr(self, name).value for name in PARAMS})

    @property
    def level(self) -> float | None:
        """Central probability of the intervals; None without a bootstrap."""
        return self.E.level

    def values(self) -> dict[str, float]:
        """Every value, in fit.json order."""
        return {name: float(getattr(self, name).value) for name in PARAMS + FRONTIER}

    def intervals(self) -> dict[str, list[float]] | None:
        """fit.json's ``ci95`` object."""
        return intervals_of({name: getattr(self, name) for name in PARAMS + FRONTIER})

    def lines(self) -> list[str]:
        """The report's lines, one per quantity."""
        return [f"    {name:<12} = {getattr(self, name).value:.6g}{getattr(self, name).interval_text()}"
                for name in PARAMS + FRONTIER]  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class VpnlsFit:
    """Approach 3 by variable projection (Czech et al. 2026), fitted beside the multi-start fit."""

    estimates: LawEstimates
    """The law, with intervals when bootstrapped."""
    objective: str
    """Always ``least_squares_loss``."""
    objective_value: float
    """Objective at the optimum."""
    grid: str
    """The (alpha, beta) grid searched."""
    grid_alpha: float
    """The grid's best alpha."""
    grid_beta: float
    """The grid's best beta."""
    at_grid_edge: bool
    """Whether the grid's best point lay on its edge."""
    converged: bool
    """Whether the polish converged."""
    bootstrap_samples: list[dict[str, float]] | None = None
    """Per resample {E, A, B, alpha, beta}; None without a bootstrap (or when every resample failed)."""
    n_bootstrap_failed: int | None = None
    """Resamples whose fit failed; None without a bootstrap."""

    def to_dict(self) -> dict[str, Any]:
        """fit.json's ``approach3.vpnls`` object."""
        out: dict[str, Any] = {**self.estimates.values(), "objective": self.objective,
                               "objective_value": self.objective_value, "grid": self.grid,
                               "grid_alpha": self.grid_alpha, "grid_beta": self.grid_beta,
                               "at_grid_edge": self.at_grid_edge, "converged": self.converged}  # fmt: skip
        intervals = self.estimates.intervals()
        if intervals is not None:
            out["ci95"] = intervals
            out["bootstrap_samples"] = self.bootstrap_samples
        if self.n_bootstrap_failed is not None:
            out["n_bootstrap_failed"] = self.n_bootstrap_failed
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], level: float | None) -> VpnlsFit:
        names = [f for f in cls.__dataclass_fields__ if f != "estimates" and f in values]
        return cls(estimates=LawEstimates.from_dict(values, level), **{name: values[name] for name in names})

    def lines(self, multistart_objective: str) -> list[str]:
        """The report's lines."""
        return [
            f"    objective    = {self.objective} (squared residuals of the loss itself: points count by"
            f" absolute error; the multi-start fit above minimized {multistart_objective})",
            f"    objective at optimum = {self.objective_value:.6g}",
            f"    grid         = {self.grid}: best alpha={self.grid_alpha:.4g}, beta={self.grid_beta:.4g}"
            + (" (on the grid's edge)" if self.at_grid_edge else "")
            + f"; polished, converged={self.converged}",
            *self.estimates.lines(),
        ]


@dataclass(frozen=True, kw_only=True)
class VpnlsSkipped:
    """Variable projection ran but its fit degenerated."""

    skipped: str
    """Why."""

    def to_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped}

    def lines(self, multistart_objective: str) -> list[str]:
        return [f"    skipped      = {self.skipped}"]


@dataclass(frozen=True, kw_only=True)
class Approach3Result:
    """A fitted L(N, D), how it was fitted, and (when bootstrapped) its intervals."""

    estimates: LawEstimates
    """E, A, B, alpha, beta and the frontier's a, b, G, with percentile intervals when bootstrapped."""
    objective: str
    """Objective minimized (``huber`` or ``least_squares``, on log-loss residuals)."""
    delta: float
    """Huber δ (meaningless for least_squares, kept for the record)."""
    objective_value: float
    """Objective at the optimum (sum over points)."""
    n_points: int
    """Points fitted."""
    n_starts: int
    """Starts screened."""
    n_polished: int
    """Starts polished with L-BFGS-B."""
    n_converged: int
    """Polished starts that converged at the tight tolerances."""
    converged: bool
    """Whether the best start converged."""
    n_params_column: str = "n_params"
    """Which N was fitted (for a store: n_params_total or n_params_nonembed)."""
    flops_column: str = "6ND"
    """Which C the table carried (for a store: flops_6nd or flops_exact)."""
    bootstrap_samples: list[dict[str, float]] | None = None
    """Per resample {E, A, B, alpha, beta}; None without a bootstrap."""
    n_bootstrap_failed: int = 0
    """Resamples whose fit failed (left out of the intervals)."""
    frontier: tuple[FrontierPoint, ...] = ()
    """At a few budgets C (the table's largest, ×10, ×100): N_opt, D_opt, D/N and loss, with intervals when
    bootstrapped; solved along the table's own C (``flops_per_token``)."""
    flops_per_token: FlopsPerToken = SIX_ND
    """C per token against N in the table's accounting (6ND, or the exact count's fitted function)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else worth recording (for example the resampling unit)."""
    vpnls: VpnlsFit | VpnlsSkipped | None = None
    """``method="vpnls"``: the variable-projection fit, or why it was skipped."""

    @property
    def law(self) -> ChinchillaLaw:
        """The fitted law, with the frontier (n_opt, d_opt, ...)."""
        return self.estimates.law

    @property
    def level(self) -> float | None:
        """Central probability of the intervals; None without a bootstrap."""
        return self.estimates.level

    @property
    def a(self) -> Estimate:
        """Exponent of N_opt ∝ C^a along 6ND (as approaches 1 and 2 name theirs)."""
        return self.estimates.a

    @property
    def b(self) -> Estimate:
        """Exponent of D_opt ∝ C^b along 6ND."""
        return self.estimates.b

    def to_dict(self) -> dict[str, Any]:
        """fit.json's ``approach3`` object."""
        out: dict[str, Any] = self.estimates.values()
        out.update(
            objective=self.objective,
            delta=self.delta,
            objective_value=self.objective_value,
            n_points=self.n_points,
            n_starts=self.n_starts,
            n_polished=self.n_polished,
            n_converged=self.n_converged,
            converged=self.converged,
            n_params_column=self.n_params_column,
            flops_column=self.flops_column,
        )
        intervals = self.estimates.intervals()
        if intervals is not None:
            out["ci95"] = intervals
            out["ci_level"] = self.level
            out["bootstrap_samples"] = self.bootstrap_samples
            out["n_bootstrap_failed"] = self.n_bootstrap_failed
        if self.frontier:
            out["frontier"] = [point.to_dict() for point in self.frontier]
        out["flops_per_token"] = self.flops_per_token.to_dict()
        if self.extra:
            out["extra"] = self.extra
        if self.vpnls is not None:
            out["vpnls"] = self.vpnls.to_dict()
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], level: float | None = None) -> Approach3Result:
        """fit.json's ``approach3`` object; its intervals at ``ci_level`` (else ``level``, the fit's
        ``bootstrap.level``, else 0.95: the only level before it was configurable)."""
        level = values.get("ci_level", level if level is not None else 0.95) if "ci95" in values else None
        simple = ("objective", "delta", "objective_value", "n_points", "n_starts", "n_polished", "n_converged",
                  "converged", "n_params_column", "flops_column", "bootstrap_samples", "n_bootstrap_failed",
                  "extra")  # fmt: skip
        fields = {name: values[name] for name in simple if name in values}
        if "flops_per_token" in values:  # absent in fit.json written before exact-FLOP frontiers: 6ND
            fields["flops_per_token"] = FlopsPerToken.from_dict(values["flops_per_token"])
        vpnls = values.get("vpnls")
        if vpnls is not None:
            vpnls_level = (level if level is not None else 0.95) if "ci95" in vpnls else None
            fields["vpnls"] = (
                VpnlsSkipped(skipped=vpnls["skipped"]) if "skipped" in vpnls else VpnlsFit.from_dict(vpnls, vpnls_level)
            )
        frontier = tuple(FrontierPoint.from_dict(row, level) for row in values.get("frontier", ()))
        return cls(estimates=LawEstimates.from_dict(values, level), frontier=frontier, **fields)

    def report(self) -> str:
        """The report's section for approach 3."""
        lines = [
            "[[Approach 3: L(N, D) = E + A/N^alpha + B/D^beta]]",
            f"    objective    = {self.objective} (delta={self.delta:g}) on log-loss residuals",
            f"    objective at optimum = {self.objective_value:.6g}",
            f"    points       = {self.n_points}",
            f"    starts       = {self.n_starts} screened, {self.n_polished} polished, {self.n_converged} converged",
        ]
        if not self.flops_per_token.is_6nd:
            lines.append("    frontier     = solved along the table's exact FLOPs; a, b, G below are the law's 6ND"
                         " values (a along exact FLOPs: [[Agreement]])")  # fmt: skip
        lines += self.estimates.lines()
        lines += [point.line() for point in self.frontier]
        if self.vpnls is not None:
            lines.append("[[Approach 3 by variable projection (Czech et al. 2026), beside the multi-start fit]]")
            lines += self.vpnls.lines(self.objective)
        return "\n".join(lines)


def _theta_to_params(theta: np.ndarray) -> dict[str, float]:
    e, a, alpha, b, beta = theta
    return {
        "E": float(np.exp(e)),
        "A": float(np.exp(a)),
        "B": float(np.exp(b)),
        "alpha": float(alpha),
        "beta": float(beta),
    }


def _params_to_theta(params: dict[str, float]) -> np.ndarray:
    return np.array([np.log(params["E"]), np.log(params["A"]), params["alpha"], np.log(params["B"]), params["beta"]])


def design(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(log N, log D) as a (2, n) array and log loss: the inputs of the objective (objectives.py)."""
    log_x = np.log(np.stack([table["n_params"].to_numpy(float), table["n_tokens"].to_numpy(float)]))
    return log_x, np.log(table["loss"].to_numpy(float))


def _check(table: pd.DataFrame, config: Approach3Config) -> None:
    if len(table) < config.min_points:
        raise FitError(f"approach3 needs at least {config.min_points} points, the table has {len(table)}")
    if table["n_params"].nunique() < 2:
        raise FitError("approach3 needs at least 2 model sizes (n_params), the table has 1")
    if table["n_tokens"].nunique() < 2:
        raise FitError("approach3 needs at least 2 token budgets (n_tokens), the table has 1")


def _polish(table: pd.DataFrame, config: Approach3Config, starts: np.ndarray, n_polish: int) -> Polished:
    log_x, log_loss = design(table)
    return fit_power_law_sum(log_x, log_loss, starts, objective=config.objective, delta=config.delta, n_polish=n_polish)


def _degenerate(params: dict[str, float]) -> str | None:
    for name in ("alpha", "beta"):
        if params[name] < 1e-6:
            return f"{name} went to 0 (the data do not show a power law in {'N' if name == 'alpha' else 'D'})"
    return None


def fit_params(table: pd.DataFrame, config: Approach3Config, starts: np.ndarray) -> dict[str, float] | None:
    """One bootstrap refit, polished from each of ``starts`` (the full-data optimum and its best grid starts).

    Returns {E, A, B, alpha, beta} or None when the resample cannot be fitted (module-level: picklable).
    """
    try:
        _check(table, config)
        polished = _polish(table, config, starts, len(starts))
    except FitError:
        return None
    params = _theta_to_params(polished.theta)
    return None if _degenerate(params) else params


def variable_projection_grid(
    log_n: np.ndarray, log_d: np.ndarray, loss: np.ndarray, exponents: np.ndarray = VPNLS_EXPONENTS
) -> tuple[dict[str, float], bool]:
    """The best (α, β) of exponents² for L = E + A N^-α + B D^-β by squared loss residuals, with (E, A, B) ≥ 0 by
    non-negative least squares at every grid point (Czech et al. 2026). Returns the parameters and whether α or β
    lies on the grid's edge.

    Non-negative least squares in three unknowns is solved exactly by enumeration: its solution is the unconstrained
    solution on its support, so it is the best of the seven supports' solutions that are non-negative. All grid
    points at once: the Gram matrices of the columns (1, N^-α, D^-β) need only sums over points.
    """
    powers_n = np.exp(-exponents[:, None] * log_n)  # (m, points): N^-α for each α
    powers_d = np.exp(-exponents[:, None] * log_d)  # (m, points): D^-β for each β
    m = len(exponents)
    gram = np.empty((m, m, 3, 3))  # [α index, β index, column, column]
    gram[..., 0, 0] = len(loss)
    gram[..., 0, 1] = gram[..., 1, 0] = powers_n.sum(axis=1)[:, None]
    gram[..., 0, 2] = gram[..., 2, 0] = powers_d.sum(axis=1)[None, :]
    gram[..., 1, 1] = (powers_n**2).sum(axis=1)[:, None]
    gram[..., 2, 2] = (powers_d**2).sum(axis=1)[None, :]
    gram[..., 1, 2] = gram[..., 2, 1] = powers_n @ powers_d.T
    rhs = np.empty((m, m, 3))
    rhs[..., 0] = loss.sum()
    rhs[..., 1] = (powers_n @ loss)[:, None]
    rhs[..., 2] = (powers_d @ loss)[None, :]
    # Scale the columns to unit norm: N^-α spans many orders of magnitude over the grid.
    norms = np.sqrt(np.diagonal(gram, axis1=-2, axis2=-1))
    gram, rhs = gram / (norms[..., :, None] * norms[..., None, :]), rhs / norms
    best_rss, best_coef = np.full((m, m), np.inf), np.zeros((m, m, 3))
    for subset in _SUBSETS:
        cols = list(subset)
        coef = (np.linalg.pinv(gram[..., cols, :][..., :, cols]) @ rhs[..., cols, None])[..., 0]
        rss = loss @ loss - (coef * rhs[..., cols]).sum(axis=-1)  # at a least-squares solution, c·G·c = c·r
        better = np.all(coef >= 0, axis=-1) & (rss < best_rss)
        best_rss = np.where(better, rss, best_rss)
        full = np.zeros((m, m, 3))
        full[..., cols] = coef / norms[..., cols]
        best_coef = np.where(better[..., None], full, best_coef)
    i, j = np.unravel_index(np.argmin(best_rss), best_rss.shape)
    e, a, b = best_coef[i, j]
    params = {"E": float(e), "A": float(a), "B": float(b), "alpha": float(exponents[i]), "beta": float(exponents[j])}
    return params, bool({i, j} & {0, m - 1})


def fit_vpnls(
    table: pd.DataFrame, config: Approach3Config, bootstrap_config: BootstrapConfig | None = None
) -> VpnlsFit | VpnlsSkipped:
    """Approach 3 by variable projection (Czech et al. 2026): grid search in (α, β) with (E, A, B) by non-negative
    least squares, then all five polished with L-BFGS-B on the same objective (squared loss residuals). Bootstrap
    resamples are polished from the full-data optimum, as the multi-start fit's are; VpnlsSkipped when the fit
    degenerates."""
    log_x, log_loss = design(table)
    grid, at_edge = variable_projection_grid(log_x[0], log_x[1], np.exp(log_loss))
    start = _params_to_theta({k: max(v, 1e-12) if k in ("E", "A", "B") else v for k, v in grid.items()})
    vpnls_config = replace(config, objective=VPNLS_OBJECTIVE)
    polished = _polish(table, vpnls_config, start[None, :], 1)
    params = _theta_to_params(polished.theta)
    reason = _degenerate(params)
    if reason:
        return VpnlsSkipped(skipped=f"vpnls: {reason}")
    samples, n_failed, level = None, None, None
    if bootstrap_config is not None and bootstrap_config.n_resamples > 0:
        samples, n_failed = bootstrap_approach3(table, vpnls_config, bootstrap_config, starts=polished.theta[None, :])
        samples, level = samples or None, bootstrap_config.level  # {E, A, B, alpha, beta} each
    return VpnlsFit(
        estimates=LawEstimates.of(params, samples, level),
        objective=VPNLS_OBJECTIVE,
        objective_value=polished.value,
        grid=f"{len(VPNLS_EXPONENTS)} x {len(VPNLS_EXPONENTS)} over [{VPNLS_EXPONENTS[0]}, {VPNLS_EXPONENTS[-1]}]",
        grid_alpha=grid["alpha"],
        grid_beta=grid["beta"],
        at_grid_edge=at_edge,
        converged=polished.converged,
        bootstrap_samples=samples,
        n_bootstrap_failed=n_failed,
    )


FRONTIER_MULTIPLES = (1.0, 10.0, 100.0)
"""Frontier rows are reported at the table's largest budget times these (extrapolation made visible)."""


def frontier_at(law: ChinchillaLaw, flops: Any, per_token: FlopsPerToken = SIX_ND) -> dict[str, Any]:
    """Compute-optimal N, D, D/N and loss of a law at a budget C, or at an array of budgets (C = per_token(N)·D)."""
    n_opt, d_opt = law.n_opt(flops, per_token), law.d_opt(flops, per_token)
    return {"n_opt": n_opt, "d_opt": d_opt, "tokens_per_param": d_opt / n_opt, "loss": law.loss(n_opt, d_opt)}


def frontier_rows(
    law: ChinchillaLaw,
    budgets: list[float],
    samples: list[dict[str, float]] | None,
    level: float | None,
    per_token: FlopsPerToken = SIX_ND,
) -> tuple[FrontierPoint, ...]:
    """Frontier points at each budget, with percentile intervals over the bootstrap samples when given."""
    flops = np.asarray(budgets, dtype=float)
    point = frontier_at(law, flops, per_token)  # every budget in one solve (a bisection off 6ND)
    per_sample = [frontier_at(ChinchillaLaw(**s), flops, per_token) for s in samples or []]
    rows = []
    for i, budget in enumerate(flops):
        values = [{k: float(v[i]) for k, v in sample.items()} for sample in per_sample]
        at_budget = {k: float(v[i]) for k, v in point.items()}
        rows.append(FrontierPoint(flops=float(budget), **estimates_from_samples(at_budget, values, FRONTIER_POINT,
                                                                                level)))  # fmt: skip
    return tuple(rows)


def frontier_of(params: dict[str, float]) -> dict[str, float]:
    """a, b, G of a parameter dict."""
    law = ChinchillaLaw(**params)
    return {"a": law.a, "b": law.b, "G": law.G}


def fit_approach3(
    table: pd.DataFrame,
    config: Approach3Config | None = None,
    bootstrap_config: BootstrapConfig | None = None,
    resamples: list[pd.DataFrame] | None = None,
    *,
    per_token: FlopsPerToken | None = None,
) -> Approach3Result:
    """Fit approach 3 to a fit table (table.py columns n_params, n_tokens, loss), optionally bootstrapped.

    The frontier is solved along the table's own C: ``per_token`` (FLOPs per token against N), by default
    derived from the table's rows (table.flops_per_token_of). Raises FitError when the table cannot support the
    fit (too few points, a single size or budget, an exponent collapsing to 0).
    """
    config = config or Approach3Config()
    per_token = flops_per_token_of(table, "the fit table") if per_token is None else per_token
    _check(table, config)
    polished = _polish(table, config, START_GRIDS[config.starts](), config.n_polish)
    params = _theta_to_params(polished.theta)
    reason = _degenerate(params)
    if reason:
        raise FitError(f"approach3: {reason}; the fit is degenerate: add model sizes or token budgets")
    result = Approach3Result(
        estimates=LawEstimates.of(params, None, None),
        objective=config.objective,
        delta=config.delta,
        objective_value=polished.value,
        n_points=len(table),
        n_starts=polished.n_starts,
        n_polished=polished.n_polished,
        n_converged=polished.n_converged,
        converged=polished.converged,
        n_params_column=table.attrs.get("n_params_column", "n_params"),
        flops_column=table.attrs.get("flops_column", "6ND"),
        flops_per_token=per_token,
    )
    budgets = [float(table["flops"].max()) * m for m in FRONTIER_MULTIPLES]
    result = replace(result, frontier=frontier_rows(result.law, budgets, None, None, per_token))
    if config.method == "vpnls":
        result = replace(result, vpnls=fit_vpnls(table, config, bootstrap_config))
    if bootstrap_config is None or bootstrap_config.n_resamples == 0:
        return result
    starts = np.concatenate([polished.theta[None, :], polished.best_starts[: config.bootstrap_n_polish]])
    samples, n_failed = bootstrap_approach3(table, config, bootstrap_config, starts=starts, resamples=resamples)
    return attach_bootstrap(result, samples, n_failed, bootstrap_config)


def bootstrap_approach3(
    table: pd.DataFrame,
    config: Approach3Config,
    bootstrap_config: BootstrapConfig,
    starts: np.ndarray | None = None,
    resamples: list[pd.DataFrame] | None = None,
) -> tuple[list[dict[str, float]], int]:
    """Refit approach 3 on every resample; returns the samples {E, A, B, alpha, beta} and the failed count.

    ``starts`` (rows of theta = log E, log A, alpha, log B, beta) are polished on each resample; by default the
    full-data optimum and the ``config.bootstrap_n_polish`` best grid starts, found by fitting ``table`` first.
    """
    if starts is None:
        polished = _polish(table, config, START_GRIDS[config.starts](), config.n_polish)
        starts = np.concatenate([polished.theta[None, :], polished.best_starts[: config.bootstrap_n_polish]])
    raw = bootstrap.run(fit_params, table, bootstrap_config, {"config": config, "starts": starts}, resamples=resamples)
    samples = [s for s in raw if s is not None]
    return samples, len(raw) - len(samples)


def attach_bootstrap(
    result: Approach3Result, samples: list[dict[str, float]], n_failed: int, bootstrap_config: BootstrapConfig
) -> Approach3Result:
    """The result with percentile intervals of parameters and frontier from the bootstrap samples."""
    if not samples:
        raise FitError(f"approach3: all {n_failed} bootstrap resamples failed: add points or use bootstrap.by=point")
    point = {name: getattr(result.estimates, name).value for name in PARAMS}
    budgets = [row.flops for row in result.frontier]
    return replace(
        result,
        estimates=LawEstimates.of(point, samples, bootstrap_config.level),
        frontier=frontier_rows(result.law, budgets, samples, bootstrap_config.level, result.flops_per_token),
        bootstrap_samples=samples,
        n_bootstrap_failed=n_failed,
        extra={**result.extra, "bootstrap_by": bootstrap_config.by, "bootstrap_seed": bootstrap_config.seed},
    )
