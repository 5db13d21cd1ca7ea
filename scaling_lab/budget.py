"""The one place for N / D / C arithmetic and tokens → steps (shared/DESIGN.md "D"; STYLE.md 6).

D counts *predicted* tokens: steps × batch sequences × sequence length. A budget is given as tokens, as FLOPs
(6·N·D or the exact Chinchilla Appendix F count, the kind is stated), or as tokens per parameter; it becomes a
step count here and nowhere else. The realized D is what a run records.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Literal

from scaling_lab.errors import ConfigError

BudgetKind = Literal["tokens", "flops_6nd", "flops_exact", "tokens_per_param"]
BUDGET_KINDS: tuple[str, ...] = ("tokens", "flops_6nd", "flops_exact", "tokens_per_param")
# Rounding tolerance before we warn (STYLE.md 6: "warn when rounding moves D by more than a percent").
ROUNDING_WARN_FRACTION = 0.01
# Most tokens one run may train on: 1e15, 64× the 15.6T tokens of Llama 3 (Dubey et al. 2024), and below 2^53 so
# that every token count stays an exact float64 (records and tables). A larger D is a typo (budget.value=1e30) and
# would otherwise overflow an int64 sequence count deep inside the data layer.
MAX_TOKENS = 1e15


@dataclass(kw_only=True)
class BudgetConfig:
    """How long a run trains."""

    kind: str = "tokens"
    """One of tokens, flops_6nd, flops_exact, tokens_per_param."""
    value: float = 1e5
    """The budget in the unit of ``kind`` (tokens, FLOPs, or tokens per parameter)."""
    params: str = "total"
    """Which N a FLOP or tokens-per-parameter budget uses: nonembed or total (Pearce & Song 2024)."""

    def __post_init__(self) -> None:
        if self.kind not in BUDGET_KINDS:
            raise ConfigError(f"budget.kind={self.kind!r} is unknown: choose one of {', '.join(BUDGET_KINDS)}")
        if not (isinstance(self.value, int | float) and math.isfinite(self.value) and self.value > 0):
            raise ConfigError(f"budget.value={self.value} must be a positive number of {self.kind}")
        if self.params not in ("nonembed", "total"):
            raise ConfigError(f"budget.params={self.params!r} is unknown: choose nonembed or total")


def tokens_for_budget(budget: BudgetConfig, *, n_params: int, flops_per_token_exact: float) -> float:
    """Planned D (tokens) for a budget; ``n_params`` is the N that ``budget.params`` names."""
    if budget.kind == "tokens":
        return float(budget.value)
    if budget.kind == "tokens_per_param":
        return budget.value * n_params
    if budget.kind == "flops_6nd":
        return budget.value / (6.0 * n_params)
    return budget.value / flops_per_token_exact


def flops_6nd(n_params: int, n_tokens: float) -> float:
    """C = 6·N·D (Kaplan et al. 2020 §2.1)."""
    return 6.0 * n_params * n_tokens


@dataclass(frozen=True, kw_only=True)
class StepPlan:
    """A budget turned into optimizer steps."""

    steps: int
    """Optimizer steps."""
    tokens_per_step: int
    """batch_sequences × sequence_length (predicted tokens per step)."""
    n_tokens_planned: float
    """D asked for by the budget."""

    @property
    def n_tokens(self) -> int:
        """Realized D = steps × tokens_per_step."""
        return self.steps * self.tokens_per_step


def steps_for_tokens(n_tokens: float, *, batch_sequences: int, sequence_length: int, field: str = "budget") -> StepPlan:
    """Round D to whole steps; ConfigError when the budget is under one batch, a warning when D moves by > 1 %."""
    tokens_per_step = batch_sequences * sequence_length
    if not n_tokens > 0:
        raise ConfigError(f"{field} gives {n_tokens:g} tokens: the budget must be > 0 tokens")
    if not n_tokens <= MAX_TOKENS:
        raise ConfigError(f"{field} gives {n_tokens:g} tokens, more than the {MAX_TOKENS:g} one run may train on:"
                          " lower budget.value")  # fmt: skip
    if n_tokens < tokens_per_step:
        raise ConfigError(
            f"{field} gives {n_tokens:g} tokens, less than one batch of {tokens_per_step} tokens"
            f" ({batch_sequences} sequences × {sequence_length}): raise the budget or lower optim.batch_tokens"
        )
    steps = round(n_tokens / tokens_per_step)
    plan = StepPlan(steps=steps, tokens_per_step=tokens_per_step, n_tokens_planned=float(n_tokens))
    moved = abs(plan.n_tokens - n_tokens) / n_tokens
    if moved > ROUNDING_WARN_FRACTION:
        warnings.warn(
            f"{field}: rounding {n_tokens:g} tokens to {steps} steps of {tokens_per_step} tokens gives"
            f" {plan.n_tokens} tokens ({moved:.1%} off); choose a budget that is a multiple of the batch",
            stacklevel=2,
        )
    return plan
