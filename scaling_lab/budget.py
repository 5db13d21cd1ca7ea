"""The one place for N / D / C arithmetic and tokens → steps.

D counts *predicted* tokens: steps × batch sequences × sequence length. A budget is given as tokens, as FLOPs
(6·N·D or the exact Chinchilla Appendix F count, the kind is stated), or as tokens per parameter; it becomes a
step count here and nowhere else (:func:`whole_steps`), and steps become tokens here and nowhere else
(:func:`tokens_for_steps`). The realized D is what a run records. C = 6·N·D is :func:`flops_6nd` wherever it is
computed: training, planning, fitting and plotting.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from scaling_lab.errors import ConfigError, TableError

BUDGET_KINDS: tuple[str, ...] = ("tokens", "flops_6nd", "flops_exact", "tokens_per_param")
# Rounding tolerance before we warn (a budget rounded to whole steps should stay within a percent).
ROUNDING_WARN_FRACTION = 0.01
# Most tokens one run may train on: 1e15, 64× the 15.6T tokens of Llama 3 (Dubey et al. 2024), and below 2^53 so
# that every token count stays an exact float64 (records and tables). A larger D is a typo (budget.value=1e30) and
# would otherwise overflow an int64 sequence count deep inside the data layer.
MAX_TOKENS = 1e15
# Above ~4 epochs, repeated tokens lose value quickly and the data-scaling law bends (Muennighoff et al. 2023,
# "Scaling Data-Constrained Language Models", §5 and Fig. 3): the data warns, and a sweep's plan flags the point.
MAX_EPOCHS = 4.0
FLOPS_PER_PARAM_PER_TOKEN = 6.0
"""Training FLOPs per parameter per token: 2 in the forward pass, 4 in the backward (Kaplan et al. 2020, §2.1;
Hoffmann et al. 2022, App. F, whose exact count 6·N approximates)."""


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
        return budget.value / flops_per_token_6n(n_params)
    return budget.value / flops_per_token_exact


def flops_per_token_6n(n_params: Any) -> Any:
    """Training FLOPs per token, 6·N (Kaplan et al. 2020 §2.1: 2N forward + 4N backward); N a number or an array."""
    return FLOPS_PER_PARAM_PER_TOKEN * n_params


def flops_6nd(n_params: Any, n_tokens: Any) -> Any:
    """C = 6·N·D (Kaplan et al. 2020 §2.1; Hoffmann et al. 2022 App. F); numbers, arrays or table columns."""
    return flops_per_token_6n(n_params) * n_tokens


def tokens_for_steps(steps: int, tokens_per_step: int) -> int:
    """D of ``steps`` optimizer steps: steps × predicted tokens per step (the one place steps become tokens)."""
    return steps * tokens_per_step


def whole_steps(n_tokens: float, tokens_per_step: int, *, round_up: bool = False) -> int:
    """Tokens → optimizer steps (the one place): the nearest whole number, or with ``round_up`` the fewest that
    hold ``n_tokens`` (a warmup reaches its tokens); at least one step."""
    ratio = n_tokens / tokens_per_step
    return max(1, math.ceil(ratio) if round_up else round(ratio))


def rounded_steps(n_tokens: float, *, tokens_per_step: int, field: str) -> int:
    """A D (a run's budget, a WSD cooldown's) as whole steps, warning when the rounding moves it by more than
    ROUNDING_WARN_FRACTION (a budget under one batch becomes one step, and says how far that is off)."""
    steps = whole_steps(n_tokens, tokens_per_step)
    realized = tokens_for_steps(steps, tokens_per_step)
    moved = abs(realized - n_tokens) / n_tokens
    if moved > ROUNDING_WARN_FRACTION:
        warnings.warn(
            f"{field}: rounding {n_tokens:g} tokens to {steps} steps of {tokens_per_step} tokens gives"
            f" {realized} tokens ({moved:.1%} off); choose a budget that is a multiple of the batch",
            stacklevel=3,
        )
    return steps


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
        return tokens_for_steps(self.steps, self.tokens_per_step)


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
    steps = rounded_steps(n_tokens, tokens_per_step=tokens_per_step, field=field)
    return StepPlan(steps=steps, tokens_per_step=tokens_per_step, n_tokens_planned=float(n_tokens))


# --- FLOPs per token as a function of N: which C a fit's isoFLOP lines hold -------------------------------------

FLOPS_ACCOUNTINGS = ("6nd", "exact")
"""How a table's C counts FLOPs: 6·N·D, or the exact count (Hoffmann et al. 2022, App. F) modelled by N."""


@dataclass(frozen=True, kw_only=True)
class FlopsPerToken:
    """Training FLOPs per token of a model family as a function of its N: ``per_param·N + overhead·N^exponent``.

    C = 6·N·D is ``per_param=6, overhead=0``. The exact count of a shape family (Hoffmann et al. 2022, App. F) is
    6·N plus what 6·N misses — attention scores and values (12·layers·context·width per token) and, when N leaves
    them out, the vocabulary matrices — a term that grows slower than N, so the ratio to 6·N falls towards 1 as
    models grow (Hoffmann et al. 2022, Table A4). :func:`fit_flops_per_token` fits that term as a power law of N
    on the table's own rows; a table whose C per token is not above 6·N (for example N counting parameters that cost
    no FLOPs, as in a mixture of experts) gets ``per_param=0``: C/D as a power law of N.
    """

    accounting: str = "6nd"
    """``6nd`` (C = 6·N·D) or ``exact`` (C counted by the model's shape, as the table's FLOPs column holds)."""
    per_param: float = FLOPS_PER_PARAM_PER_TOKEN
    """FLOPs per parameter per token of the term linear in N."""
    overhead: float = 0.0
    """Coefficient of the sub-linear term (0 for 6ND)."""
    exponent: float = 0.0
    """Exponent of N in the sub-linear term."""
    n_params_range: tuple[float, float] | None = None
    """The N range the function was fitted on (outside it, the function is extrapolated); None for 6ND."""
    max_rel_error: float = 0.0
    """Largest relative error of the function against the table's C/D over that range."""

    def __post_init__(self) -> None:
        if self.accounting not in FLOPS_ACCOUNTINGS:
            raise ConfigError(f"flops_per_token.accounting={self.accounting!r} is unknown: choose 6nd or exact")
        for name in ("per_param", "overhead", "exponent", "max_rel_error"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value)):
                raise ConfigError(f"flops_per_token.{name}={value!r} must be a finite number")
        if self.per_param < 0 or self.overhead < 0 or (self.per_param == 0 and self.overhead == 0):
            raise ConfigError("flops_per_token: per_param and overhead must be ≥ 0 and not both 0")
        if self.per_param == 0 and self.exponent <= 0:
            raise ConfigError(f"flops_per_token.exponent={self.exponent} must be > 0 when per_param is 0")
        if self.exponent < 0:
            raise ConfigError(f"flops_per_token.exponent={self.exponent} must be ≥ 0 (FLOPs per token grow with N)")
        if self.n_params_range is not None:
            object.__setattr__(self, "n_params_range", tuple(float(v) for v in self.n_params_range))

    @property
    def is_6nd(self) -> bool:
        """Whether this is C = 6·N·D (closed-form frontiers apply)."""
        return self.per_param == FLOPS_PER_PARAM_PER_TOKEN and self.overhead == 0.0

    def __call__(self, n_params: float | np.ndarray) -> np.ndarray:
        """Training FLOPs per token at N."""
        n = np.asarray(n_params, dtype=float)
        return self.per_param * n + self.overhead * n**self.exponent

    def elasticity(self, n_params: float | np.ndarray) -> np.ndarray:
        """d log(FLOPs per token) / d log N: 1 for 6ND, between ``exponent`` and 1 otherwise."""
        n = np.asarray(n_params, dtype=float)
        linear, sublinear = self.per_param * n, self.overhead * n**self.exponent
        return (linear + self.exponent * sublinear) / (linear + sublinear)

    def flops(self, n_params: float | np.ndarray, n_tokens: float | np.ndarray) -> np.ndarray:
        """C of N parameters trained on D tokens."""
        return self(n_params) * np.asarray(n_tokens, dtype=float)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"accounting": self.accounting, "per_param": self.per_param, "overhead": self.overhead,
                               "exponent": self.exponent, "max_rel_error": self.max_rel_error}  # fmt: skip
        out["n_params_range"] = None if self.n_params_range is None else list(self.n_params_range)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FlopsPerToken:
        """Inverse of :meth:`to_dict`; ConfigError naming the field when a value is missing or invalid."""
        if not isinstance(values, dict):
            raise ConfigError(f"flops_per_token={values!r} must be an object (rerun sl-fit)")
        try:
            fields: dict[str, Any] = {"accounting": str(values["accounting"])}
            for name in ("per_param", "overhead", "exponent", "max_rel_error"):
                if name in values:  # absent: the dataclass default (6ND's)
                    fields[name] = float(values[name])
            span = values.get("n_params_range")
            fields["n_params_range"] = None if span is None else (float(span[0]), float(span[1]))
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise ConfigError(f"flops_per_token is incomplete or not numeric ({error!r}): rerun sl-fit") from error
        return cls(**fields)


SIX_ND = FlopsPerToken()
"""C = 6·N·D (Kaplan et al. 2020, §2.1)."""


def fit_flops_per_token(n_params: np.ndarray, n_tokens: np.ndarray, flops: np.ndarray) -> FlopsPerToken:
    """The FLOPs-per-token function of a table's rows (N, D, C): 6ND when C = 6·N·D, else ``6N + c·N^p``.

    C/D within ROUNDING_WARN_FRACTION of 6·N on every row is 6ND (a budget rounded to whole steps moves D that much).
    Otherwise c and p come from least squares of log(C/D − 6N) on log N: the exact count of a shape family is 6N
    plus attention and vocabulary terms that scale as a power of the width (one fitted power covers a family that
    grows in width at fixed depth, ~N^0.5, or along the aspect-ratio rule, ~N^0.67), and it tends to 6N at large N
    (Hoffmann et al. 2022, Table A4), where a power law of C/D alone would fall below 6N. When C/D is not above 6N
    on every row, C/D itself is fitted as a power law of N. A table whose C/D falls as N grows is refused.
    """
    n = np.asarray(n_params, dtype=float)
    per_token = np.asarray(flops, dtype=float) / np.asarray(n_tokens, dtype=float)
    six = flops_per_token_6n(n)
    if np.all(np.abs(per_token / six - 1.0) <= ROUNDING_WARN_FRACTION):
        return SIX_ND
    log_n = np.log(n)
    overhead = per_token - six
    if np.all(overhead > 0):
        per_param, log_target = FLOPS_PER_PARAM_PER_TOKEN, np.log(overhead)
    else:
        per_param, log_target = 0.0, np.log(per_token)
    if np.ptp(log_n) > 0:
        exponent, log_coefficient = np.polyfit(log_n, log_target, 1)
    else:  # one size: the overhead is taken proportional to N (its ratio to 6N stays as measured)
        exponent, log_coefficient = 1.0, float(np.mean(log_target - log_n))
    if per_param == 0.0 and exponent <= 0:
        raise TableError(
            f"C/D (FLOPs per token) falls as N grows (power {exponent:.3g} of N): the FLOPs column must hold each"
            " row's training FLOPs; drop it to use C = 6·N·D"
        )
    exponent = max(float(exponent), 0.0)  # an overhead shrinking with N is taken constant: C/D stays increasing
    if exponent == 0.0 and per_param:
        log_coefficient = float(np.mean(log_target))
    function = FlopsPerToken(accounting="exact", per_param=per_param, overhead=float(np.exp(log_coefficient)),
                             exponent=exponent, n_params_range=(float(n.min()), float(n.max())))  # fmt: skip
    error = float(np.max(np.abs(function(n) / per_token - 1.0)))
    return replace(function, max_rel_error=error)
