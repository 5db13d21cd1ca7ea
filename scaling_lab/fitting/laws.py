"""The parametric loss law L(N, D) = E + A/N^alpha + B/D^beta and its compute-optimal frontier.

Hoffmann et al. 2022 ("Chinchilla"), eq. 2 for the law and eq. 4 / Appendix D.2 for the frontier:
minimizing L subject to C = 6 N D gives

    N_opt(C) = G (C/6)^a,   D_opt(C) = G^-1 (C/6)^b,
    a = beta / (alpha + beta),   b = alpha / (alpha + beta),   G = (alpha A / (beta B))^(1/(alpha+beta)).

N is parameters, D training tokens, C training FLOPs. All functions accept scalars or numpy arrays.

When C is not 6 N D but the exact count of the sweep's shapes (Hoffmann et al. 2022, App. F), C = f(N)·D with
f the FLOPs per token of scaling_lab.budget.FlopsPerToken, the optimum along C moves: setting
d/dN L(N, C/f(N)) = 0 gives N ∂L/∂N = g(N) D ∂L/∂D with g = d log f / d log N, so each law gives the D at which N
is optimal (``tokens_at_optimum``), C(N) = f(N) D(N) rises with N, and N_opt(C) is its inverse, found by
bisection in log N. For f = 6N (g = 1) this is the closed form above.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from scaling_lab.budget import FLOPS_PER_PARAM_PER_TOKEN, SIX_ND, FlopsPerToken
from scaling_lab.errors import ConfigError, TableError
from scaling_lab.fitting.estimate import Estimate

_LOG_TOLERANCE = 1e-12
"""Bisection stops when the log-N bracket is this narrow (N to 12 significant digits)."""


def _increasing_root(log_value, target: np.ndarray, start: np.ndarray) -> np.ndarray:
    """x with log_value(x) = target for an increasing log_value, elementwise, by bisection from a bracket grown
    around ``start`` (vectorised: one pass serves every budget of a frontier)."""
    low, high = start - 1.0, start + 1.0
    for widenings in range(9):  # widen until the bracket holds the root (2^8 e-folds ≈ 111 decades either side)
        below, above = log_value(low) > target, log_value(high) < target
        if not (below.any() or above.any()):
            break
        if widenings == 8:
            raise ValueError("no compute-optimal N within 111 decades of the 6ND optimum: check the law and C")
        low, high = np.where(below, low - (high - low), low), np.where(above, high + (high - low), high)
    while np.any(high - low > _LOG_TOLERANCE):
        middle = 0.5 * (low + high)
        up = log_value(middle) < target
        low, high = np.where(up, middle, low), np.where(up, high, middle)
    return 0.5 * (low + high)


class PowerLawFrontier(ABC):
    """The compute-optimal frontier of any law with N_opt(C) = G (C/6)^a and D_opt(C) = G^-1 (C/6)^b."""

    @property
    @abstractmethod
    def G(self) -> float: ...

    @property
    @abstractmethod
    def a(self) -> float: ...

    @property
    @abstractmethod
    def b(self) -> float: ...

    @abstractmethod
    def loss(self, n_params: ArrayLike, n_tokens: ArrayLike) -> np.ndarray: ...

    @abstractmethod
    def tokens_at_optimum(self, n_params: ArrayLike, elasticity: ArrayLike) -> np.ndarray:
        """D at which N is compute-optimal on isoFLOP lines whose FLOPs per token grow as N^elasticity locally
        (N ∂L/∂N = elasticity · D ∂L/∂D; elasticity 1 is C = 6 N D)."""

    def n_opt(self, flops: ArrayLike, per_token: FlopsPerToken = SIX_ND) -> np.ndarray:
        """Compute-optimal parameters for a budget of C FLOPs (C = per_token(N)·D; 6 N D by default)."""
        c = np.asarray(flops, dtype=float)
        if per_token.is_6nd:
            return self.G * (c / FLOPS_PER_PARAM_PER_TOKEN) ** self.a
        start = np.broadcast_to(np.log(self.G * (c / FLOPS_PER_PARAM_PER_TOKEN) ** self.a), c.shape)
        log_c = lambda log_n: np.log(self._flops_along(np.exp(log_n), per_token))  # noqa: E731
        return np.exp(_increasing_root(log_c, np.log(c), start))

    def d_opt(self, flops: ArrayLike, per_token: FlopsPerToken = SIX_ND) -> np.ndarray:
        """Compute-optimal tokens for a budget of C FLOPs: C / per_token(N_opt) (6 N D by default)."""
        c = np.asarray(flops, dtype=float)
        if per_token.is_6nd:
            return (c / FLOPS_PER_PARAM_PER_TOKEN) ** self.b / self.G
        return c / per_token(self.n_opt(c, per_token))

    def tokens_per_param(self, flops: ArrayLike, per_token: FlopsPerToken = SIX_ND) -> np.ndarray:
        """D_opt / N_opt at a budget of C FLOPs."""
        return self.d_opt(flops, per_token) / self.n_opt(flops, per_token)

    def loss_at_optimum(self, flops: ArrayLike, per_token: FlopsPerToken = SIX_ND) -> np.ndarray:
        """Lowest predicted loss reachable with C FLOPs."""
        return self.loss(self.n_opt(flops, per_token), self.d_opt(flops, per_token))

    def flops_for_n_opt(self, n_params: ArrayLike, per_token: FlopsPerToken = SIX_ND) -> np.ndarray:
        """The budget C whose compute-optimal N is ``n_params`` (inverse of :meth:`n_opt`)."""
        n = np.asarray(n_params, dtype=float)
        if per_token.is_6nd:
            return FLOPS_PER_PARAM_PER_TOKEN * (n / self.G) ** (1.0 / self.a)
        return self._flops_along(n, per_token)

    def flops_for_d_opt(self, n_tokens: ArrayLike, per_token: FlopsPerToken = SIX_ND) -> np.ndarray:
        """The budget C whose compute-optimal D is ``n_tokens`` (inverse of :meth:`d_opt`)."""
        d = np.asarray(n_tokens, dtype=float)
        if per_token.is_6nd:
            return FLOPS_PER_PARAM_PER_TOKEN * (d * self.G) ** (1.0 / self.b)
        start = np.broadcast_to(np.log(self.G * (d * self.G) ** (self.a / self.b)), d.shape)  # the 6ND optimum's N
        log_d = lambda log_n: np.log(self._tokens_along(np.exp(log_n), per_token))  # noqa: E731
        n = np.exp(_increasing_root(log_d, np.log(d), start))
        return per_token(n) * d

    def exponent_over(self, budgets: ArrayLike, per_token: FlopsPerToken = SIX_ND) -> float:
        """a in C's own accounting: the least-squares slope of log N_opt on log C over these budgets.

        Under 6 N D it is the law's a exactly; with exact FLOPs N_opt(C) is not a power law and this is the
        exponent a power law fitted to the frontier at the sweep's budgets would have (as approach 2 fits it).
        """
        if per_token.is_6nd:
            return float(self.a)
        c = np.unique(np.asarray(budgets, dtype=float))
        if len(c) < 2:  # one budget: the local slope there
            c = c[0] * np.array([0.5, 2.0])
        return float(np.polyfit(np.log(c), np.log(self.n_opt(c, per_token)), 1)[0])

    def _tokens_along(self, n: np.ndarray, per_token: FlopsPerToken) -> np.ndarray:
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return self.tokens_at_optimum(n, per_token.elasticity(n))

    def _flops_along(self, n: np.ndarray, per_token: FlopsPerToken) -> np.ndarray:
        """C(N) = per_token(N) · D at which N is optimal: rises with N, so N_opt(C) is its inverse."""
        with np.errstate(over="ignore"):
            return per_token(n) * self._tokens_along(n, per_token)


FRONTIER_ESTIMATES = ("a", "b", "k_n", "k_d")
"""The estimates of a frontier fitted directly (approaches 1 and 2), in fit.json order."""


class FittedFrontier:
    """N_opt(C) = k_n C^a and D_opt(C) = k_d C^b fitted directly (approaches 1 and 2); subclasses hold the estimates."""

    k_n: Estimate
    k_d: Estimate
    a: Estimate
    b: Estimate

    def n_opt(self, flops: ArrayLike) -> np.ndarray:
        """Compute-optimal parameters for C FLOPs."""
        return self.k_n.value * np.asarray(flops, dtype=float) ** self.a.value

    def d_opt(self, flops: ArrayLike) -> np.ndarray:
        """Compute-optimal tokens for C FLOPs."""
        return self.k_d.value * np.asarray(flops, dtype=float) ** self.b.value

    def frontier_estimates(self) -> dict[str, Estimate]:
        """a, b, k_n, k_d by name."""
        return {name: getattr(self, name) for name in FRONTIER_ESTIMATES}

    def frontier_values(self) -> dict[str, float]:
        """The values of a, b, k_n, k_d by name (one bootstrap sample's record)."""
        return {name: estimate.value for name, estimate in self.frontier_estimates().items()}


@dataclass(frozen=True, kw_only=True)
class ChinchillaLaw(PowerLawFrontier):
    """L(N, D) = E + A / N**alpha + B / D**beta."""

    E: float
    """Irreducible loss (nats/token): the entropy of the data as N, D → ∞."""
    A: float
    """Model-size coefficient."""
    B: float
    """Data-size coefficient."""
    alpha: float
    """Exponent of N."""
    beta: float
    """Exponent of D."""

    def __post_init__(self) -> None:
        for name in ("A", "B", "alpha", "beta"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"ChinchillaLaw.{name} must be a positive finite number, got {value}")
        if not np.isfinite(self.E):
            raise ValueError(f"ChinchillaLaw.E must be finite, got {self.E}")

    def loss(self, n_params: ArrayLike, n_tokens: ArrayLike) -> np.ndarray:
        """Predicted loss at N parameters trained on D tokens."""
        n = np.asarray(n_params, dtype=float)
        d = np.asarray(n_tokens, dtype=float)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta

    def tokens_at_optimum(self, n_params: ArrayLike, elasticity: ArrayLike) -> np.ndarray:
        """α A N^-α = g β B D^-β at the optimum, so D = (g β B N^α / (α A))^(1/β)."""
        n, g = np.asarray(n_params, dtype=float), np.asarray(elasticity, dtype=float)
        return (g * self.beta * self.B * n**self.alpha / (self.alpha * self.A)) ** (1.0 / self.beta)

    @property
    def a(self) -> float:
        """Exponent of N_opt ∝ C^a."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D_opt ∝ C^b (a + b = 1)."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def G(self) -> float:
        """Scale of the frontier: N_opt(C) = G (C/6)^a."""
        return (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, float]) -> ChinchillaLaw:
        return cls(**{k: float(values[k]) for k in ("E", "A", "B", "alpha", "beta")})


# Published fits, each with its source. Parameters as printed in the papers.
CHINCHILLA_APPROACH3 = ChinchillaLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
"""Hoffmann et al. 2022, eq. 10 (approach 3)."""

BESIROGLU_2024 = ChinchillaLaw(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)
"""Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt", eq. 4 (refit of approach 3)."""


# ----------------------------------------------------------------------------------------------------------------
# Reading fit.json (written by scaling_lab.fitting.run): the one reader of its file and of its approach-3 laws, so
# that every tool that plans from or checks a fit refuses the same malformed files with the same one-line errors.


def read_fit_json(path: str | Path) -> dict[str, Any]:
    """The top-level object of a fit.json; a TableError names the file and what is wrong when it cannot be read, is
    not UTF-8 JSON, or is not an object."""
    path = Path(path)
    try:
        payload = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise TableError(f"{path}: cannot be read ({error.strerror or error}): check the path") from None
    except UnicodeDecodeError as error:
        raise TableError(f"{path}: not UTF-8 text (offset {error.start}), so not a fit.json: rerun sl-fit") from None
    except json.JSONDecodeError as error:
        raise TableError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}); rerun sl-fit") from None
    except (ValueError, RecursionError) as error:  # an integer of over 4300 digits; nesting deeper than the stack
        raise TableError(f"{path}: not a JSON document this reader can hold ({error}); rerun sl-fit") from None
    return _fit_object(payload, str(path))


def approach3_laws(fit: Any, source: str) -> tuple[ChinchillaLaw, tuple[ChinchillaLaw, ...]]:
    """fit.json's approach-3 law and its bootstrap laws (``approach3.bootstrap_samples``; none without a bootstrap);
    a TableError names ``source`` and the field that is missing or of the wrong type."""
    block = _fit_object(fit, source).get("approach3")
    if not isinstance(block, Mapping):
        raise TableError(f"{source}: no 'approach3' object; fit with approach 3 (sl-fit) to plan from it")
    law = _law(block, source, "approach3")
    raw_samples = block.get("bootstrap_samples", fit.get("bootstrap_samples"))
    if raw_samples is None:  # a fit without a bootstrap
        raw_samples = []
    if not isinstance(raw_samples, list):
        raise TableError(
            f"{source}: approach3.bootstrap_samples is {json_kind(raw_samples)}, not a list of"
            " {E, A, B, alpha, beta} objects; rerun sl-fit"
        )
    return law, tuple(_law(sample, source, f"approach3.bootstrap_samples[{i}]") for i, sample in enumerate(raw_samples))


@dataclass(frozen=True, kw_only=True)
class FrontierBlock:
    """fit.json's approach-1 or approach-2 object, checked: N_opt = k_n C^a fitted directly, its bootstrap samples,
    and the (C, lowest loss) points the approach found (approach 2's used per-budget minima, approach 1's envelope)."""

    k_n: float
    a: float
    samples: tuple[tuple[float, float], ...]
    """(k_n, a) of each bootstrap refit; empty without a bootstrap."""
    minima: tuple[tuple[float, float], ...]
    """(C, loss) points; a point sl-fit wrote as null (a NaN) is left out."""
    curve: str | None
    """Approach 2's profile curve; None for approach 1."""


FRONTIER_POINTS = {"approach1": ("envelope", "flops", "loss"), "approach2": ("budgets", "flops", "loss_opt")}
"""Where each frontier approach keeps its (C, lowest loss) points in fit.json: the list and its two fields."""


def frontier_block(fit: Any, name: str, source: str) -> FrontierBlock | None:
    """fit.json's ``approach1`` or ``approach2`` object checked field by field (None when the fit has none); a
    TableError names ``source`` and the field that is missing or of the wrong type."""
    block = _fit_object(fit, source).get(name)
    if block is None:
        return None
    if not isinstance(block, Mapping):
        raise TableError(f"{source}: {name} is {json_kind(block)}, not an object with k_n and a; rerun sl-fit")
    k_n = _number(block, "k_n", source, name, positive=True)
    a = _number(block, "a", source, name)
    samples = []
    for i, sample in enumerate(_list(block.get("bootstrap_samples"), source, f"{name}.bootstrap_samples")):
        where = f"{name}.bootstrap_samples[{i}]"
        if not isinstance(sample, Mapping):
            raise TableError(f"{source}: {where} is {json_kind(sample)}, not an object with k_n and a; rerun sl-fit")
        samples.append((_number(sample, "k_n", source, where, positive=True), _number(sample, "a", source, where)))
    rows, x, y = FRONTIER_POINTS[name]
    minima = []
    for i, row in enumerate(_list(block.get(rows), source, f"{name}.{rows}")):
        where = f"{name}.{rows}[{i}]"
        if not isinstance(row, Mapping):
            raise TableError(f"{source}: {where} is {json_kind(row)}, not an object; rerun sl-fit")
        if (name == "approach2" and not row.get("used")) or row.get(x) is None or row.get(y) is None:
            continue  # a budget approach 2 did not use, or a value sl-fit wrote as null
        minima.append((_number(row, x, source, where, positive=True), _number(row, y, source, where)))
    curve = block.get("curve")
    if curve is not None and not isinstance(curve, str):
        raise TableError(f"{source}: {name}.curve is {json_kind(curve)}, not a curve name; rerun sl-fit")
    return FrontierBlock(k_n=k_n, a=a, samples=tuple(samples), minima=tuple(minima), curve=curve)


def skipped_reasons(fit: Any, source: str) -> dict[str, str]:
    """fit.json's ``skipped`` object (approach → why sl-fit skipped it; empty when absent), checked."""
    skipped = _fit_object(fit, source).get("skipped")
    if skipped is None:
        return {}
    if not isinstance(skipped, Mapping):
        raise TableError(f"{source}: skipped is {json_kind(skipped)}, not an object of reasons; rerun sl-fit")
    for name, reason in skipped.items():
        if not isinstance(reason, str):
            raise TableError(f"{source}: skipped.{name} is {json_kind(reason)}, not a reason; rerun sl-fit")
    return dict(skipped)


def interval_level(fit: Any, name: str, source: str) -> float:
    """Central probability of an approach's bootstrap intervals: its ``ci_level``, else ``bootstrap.level``, else
    0.95; a TableError names the field that is not a probability."""
    fit = _fit_object(fit, source)
    block, bootstrap = fit.get(name), fit.get("bootstrap")
    if bootstrap is not None and not isinstance(bootstrap, Mapping):
        raise TableError(f"{source}: bootstrap is {json_kind(bootstrap)}, not an object; rerun sl-fit")
    for where, holder, key in ((f"{name}.ci_level", block, "ci_level"), ("bootstrap.level", bootstrap, "level")):
        if isinstance(holder, Mapping) and holder.get(key) is not None:
            level = _number(holder, key, source, where.rsplit(".", 1)[0])
            if not 0 < level < 1:
                raise TableError(f"{source}: {where}={level} is not a probability between 0 and 1; rerun sl-fit")
            return level
    return 0.95


def fit_per_token(fit: Any, source: str) -> FlopsPerToken:
    """The FLOPs per token every frontier of a fit is solved along (``flops_per_token``, top level or in the
    approach-3 object); 6ND for fit.json written before it was recorded. A TableError names ``source`` otherwise."""
    fit = _fit_object(fit, source)
    block = fit.get("approach3")
    values = fit.get("flops_per_token", block.get("flops_per_token") if isinstance(block, Mapping) else None)
    try:
        return SIX_ND if values is None else FlopsPerToken.from_dict(values)
    except ConfigError as error:
        raise TableError(f"{source}: {error}") from None


def json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type with its article, for messages ("an object", "null")."""
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _fit_object(payload: Any, source: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise TableError(f"{source}: the top level is {json_kind(payload)}, not an object: pass sl-fit's fit.json")
    return payload


def _list(value: Any, source: str, where: str) -> list[Any]:
    """A list field of fit.json (absent or null: empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise TableError(f"{source}: {where} is {json_kind(value)}, not a list; rerun sl-fit")
    return value


def _present_number(values: Mapping[str, Any], key: str, source: str, where: str) -> int | float:
    """``values[key]``, present and a JSON number (not a bool); a TableError names ``where.key`` otherwise."""
    if key not in values:
        raise TableError(f"{source}: {where}.{key} is missing; rerun sl-fit")
    value = values[key]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TableError(f"{source}: {where}.{key} is {json_kind(value)}, not a number; rerun sl-fit")
    return value


def _number(values: Mapping[str, Any], key: str, source: str, where: str, *, positive: bool = False) -> float:
    """``values[key]`` as a finite (and, if asked, positive) float; a TableError names ``where.key`` otherwise."""
    value = _present_number(values, key, source, where)
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float's range
        number = math.inf
    if not math.isfinite(number) or (positive and number <= 0):
        kind = "positive finite" if positive else "finite"
        raise TableError(f"{source}: {where}.{key}={value} is not a {kind} number; rerun sl-fit")
    return number


def _law(values: Any, source: str, where: str) -> ChinchillaLaw:
    """A ChinchillaLaw from a fit.json object; a TableError names ``source`` and the field (``where.name``)."""
    if not isinstance(values, Mapping):
        raise TableError(f"{source}: {where} is {json_kind(values)}, not an object with E, A, B, alpha, beta")
    for name in (parameter.name for parameter in fields(ChinchillaLaw)):  # E, A, B, alpha, beta
        _present_number(values, name, source, where)
    try:
        law = ChinchillaLaw.from_dict(dict(values))  # names the parameter that is not finite or not positive
        scale = law.G  # the frontier's scale overflows for absurd coefficients (A = 1e308)
    except (ValueError, ArithmeticError) as error:  # overflow, or a product that underflows to zero
        raise TableError(f"{source}: {where}: {error}; rerun sl-fit") from None
    if not 0 < scale < math.inf:
        raise TableError(f"{source}: {where}: the frontier scale G={scale} is not positive and finite; rerun sl-fit")
    return law
