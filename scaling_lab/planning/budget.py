"""Training-optimal budget planning: from C (or N, or D, or a target loss) to N_opt, D_opt and predicted loss.

Every query is answered on the compute-optimal frontier of the law (Hoffmann et al. 2022, eq. 4; C = 6 N D):
a given N or D is placed at the budget whose optimum it is, C = 6 (N/G)^(1/a) or C = 6 (D G)^(1/b), and a
target loss at the smallest budget that reaches it. A law fitted on exact FLOPs carries its FLOPs per token
against N, and every C here is then in those FLOPs, its frontier solved along them (scaling_lab.fitting.laws).
With bootstrap samples each quantity is recomputed per sample and its 95% interval is the 2.5th-97.5th
percentile (an :class:`~scaling_lab.fitting.estimate.Estimate`, as every fitted number).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

from scaling_lab.budget import SIX_ND, FlopsPerToken
from scaling_lab.errors import ConfigError
from scaling_lab.fitting.estimate import Estimate
from scaling_lab.planning.laws import LoadedLaw, LossLaw

INTERVAL_LEVEL = 0.95
"""Central probability of the percentile-bootstrap intervals (Efron & Tibshirani 1993, §13.3)."""


@dataclass(frozen=True, kw_only=True)
class BudgetQuery:
    """Exactly one of flops, n_params, n_tokens or target_loss."""

    flops: float | None = None
    """Training compute C in FLOPs (6 N D, or the law's exact FLOPs when it was fitted on them)."""
    n_params: float | None = None
    """Model size N (in the law's N: non-embedding for the published laws)."""
    n_tokens: float | None = None
    """Training tokens D."""
    target_loss: float | None = None
    """Loss to reach (nats/token, on the law's data)."""

    def __post_init__(self) -> None:
        given = {k: v for k, v in self.__dict__.items() if v is not None}
        if len(given) != 1:
            raise ConfigError(
                f"give exactly one of flops, n_params, n_tokens, target_loss (got {sorted(given) or 'none'})"
            )
        ((name, value),) = given.items()
        if not np.isfinite(value) or value <= 0:
            raise ConfigError(f"{name}={value} must be a positive number")


def budget_for_query(law: LossLaw, query: BudgetQuery, per_token: FlopsPerToken = SIX_ND) -> float:
    """The compute budget C (C = per_token(N)·D) whose compute-optimal point answers the query."""
    if query.flops is not None:
        return float(query.flops)
    if query.n_params is not None:
        return float(law.flops_for_n_opt(query.n_params, per_token))
    if query.n_tokens is not None:
        return float(law.flops_for_d_opt(query.n_tokens, per_token))
    return flops_for_loss(law, float(query.target_loss), per_token)  # type: ignore[arg-type]


def flops_for_loss(law: LossLaw, target_loss: float, per_token: FlopsPerToken = SIX_ND) -> float:
    """Smallest C whose compute-optimal loss equals the target (the optimum's loss falls monotonically in C)."""
    floor = float(law.loss_at_optimum(1e60, per_token))
    if target_loss <= floor:
        raise ConfigError(f"target_loss={target_loss} is at or below what this law reaches (≈{floor:.4f}); raise it")
    log_lo, log_hi = np.log(1.0), np.log(1e60)
    if float(law.loss_at_optimum(1.0, per_token)) <= target_loss:
        return 1.0
    if per_token.is_6nd:
        return float(
            np.exp(
                brentq(
                    lambda x: float(law.loss_at_optimum(np.exp(x))) - target_loss,
                    log_lo,
                    log_hi,
                    xtol=1e-12,
                    rtol=1e-14,
                )
            )
        )

    # Along other FLOPs each C's optimum costs a root-find: search the optimum's N instead (its loss falls as N
    # grows; D there is closed-form), then C is the budget of that N.
    def optimum_loss(log_n: float) -> float:
        n = np.exp(log_n)
        return float(law.loss(n, law.tokens_at_optimum(n, per_token.elasticity(n)))) - target_loss

    log_n_lo, log_n_hi = (float(np.log(law.n_opt(c, per_token))) for c in (1.0, 1e60))
    log_n = brentq(optimum_loss, log_n_lo, log_n_hi, xtol=1e-12, rtol=1e-14)
    return float(law.flops_for_n_opt(np.exp(log_n), per_token))


@dataclass(frozen=True, kw_only=True)
class BudgetPlan:
    """The compute-optimal answer to one query."""

    flops: Estimate
    """Training FLOPs C in the law's accounting (exact for a flops query; per sample for the others)."""
    n_params: Estimate
    """N_opt."""
    n_tokens: Estimate
    """D_opt."""
    tokens_per_param: Estimate
    """D_opt / N_opt."""
    loss: Estimate
    """Predicted loss at (N_opt, D_opt)."""
    source: str
    """Where the law came from."""
    n_bootstrap: int = 0
    """Number of bootstrap samples behind the intervals."""
    notes: tuple[str, ...] = field(default=())
    """Extra lines for the report (model shape suggestion, MoE sizes, ...)."""
    flops_accounting: str = "6nd"
    """How C counts FLOPs: ``6nd`` or ``exact`` (the law's fit.json says)."""

    def rows(self) -> list[tuple[str, str]]:
        return [
            (f"compute C (FLOPs, {'6ND' if self.flops_accounting == '6nd' else 'exact'})", self.flops.format(".3e")),
            ("N_opt (params)", self.n_params.format(".3e")),
            ("D_opt (tokens)", self.n_tokens.format(".3e")),
            ("tokens per param", self.tokens_per_param.format(".3g")),
            ("predicted loss", self.loss.format(".4f")),
        ]

    def report(self) -> str:
        """A two-column text table with the bootstrap intervals."""
        header = f"law: {self.source}" + (
            f" ({self.n_bootstrap} bootstrap samples, {INTERVAL_LEVEL:.0%} intervals)" if self.n_bootstrap else ""
        )
        width = max(len(name) for name, _ in self.rows())
        lines = [header] + [f"  {name:<{width}}  {value}" for name, value in self.rows()]
        return "\n".join([*lines, *self.notes])


def _point(law: LossLaw, query: BudgetQuery, per_token: FlopsPerToken, *, strict: bool = True) -> np.ndarray:
    try:
        flops = budget_for_query(law, query, per_token)
    except ConfigError:
        if strict:
            raise
        return np.full(5, np.nan)  # a bootstrap sample whose floor lies above the target loss
    n, d = float(law.n_opt(flops, per_token)), float(law.d_opt(flops, per_token))
    return np.array([flops, n, d, d / n, float(law.loss(n, d))])


def plan_budget(loaded: LoadedLaw, query: BudgetQuery) -> BudgetPlan:
    """Compute-optimal N, D, tokens per parameter and loss for the query, with intervals from bootstrap samples."""
    point = _point(loaded.law, query, loaded.per_token)
    per_sample = np.array([_point(s, query, loaded.per_token, strict=False) for s in loaded.samples])
    per_sample = per_sample.reshape(-1, point.size)
    estimates = [Estimate.from_samples(point[i], per_sample[:, i], INTERVAL_LEVEL) for i in range(point.size)]
    given = {"flops": 0, "n_params": 1, "n_tokens": 2, "target_loss": 4}
    exact = next(index for name, index in given.items() if getattr(query, name) is not None)
    estimates[exact] = Estimate(float(point[exact]))  # the asked-for quantity is exact, not estimated
    flops, n_params, n_tokens, tokens_per_param, loss = estimates
    return BudgetPlan(
        flops=flops,
        n_params=n_params,
        n_tokens=n_tokens,
        tokens_per_param=tokens_per_param,
        loss=loss,
        source=loaded.source,
        n_bootstrap=len(loaded.samples),
        flops_accounting=loaded.per_token.accounting,
    )
