"""The parametric loss law L(N, D) = E + A/N^alpha + B/D^beta and its compute-optimal frontier.

Hoffmann et al. 2022 ("Chinchilla"), eq. 2 for the law and eq. 4 / Appendix D.2 for the frontier:
minimizing L subject to C = 6 N D gives

    N_opt(C) = G (C/6)^a,   D_opt(C) = G^-1 (C/6)^b,
    a = beta / (alpha + beta),   b = alpha / (alpha + beta),   G = (alpha A / (beta B))^(1/(alpha+beta)).

N is parameters, D training tokens, C training FLOPs. All functions accept scalars or numpy arrays.
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

from scaling_lab.errors import TableError

# Training FLOPs per parameter per token: 2 in the forward pass, 4 in the backward (Kaplan et al. 2020, §2.1).
FLOPS_PER_PARAM_PER_TOKEN = 6.0


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

    def n_opt(self, flops: ArrayLike) -> np.ndarray:
        """Compute-optimal parameters for a budget of C FLOPs (C = 6 N D)."""
        return self.G * (np.asarray(flops, dtype=float) / FLOPS_PER_PARAM_PER_TOKEN) ** self.a

    def d_opt(self, flops: ArrayLike) -> np.ndarray:
        """Compute-optimal tokens for a budget of C FLOPs (C = 6 N D)."""
        return (np.asarray(flops, dtype=float) / FLOPS_PER_PARAM_PER_TOKEN) ** self.b / self.G

    def tokens_per_param(self, flops: ArrayLike) -> np.ndarray:
        """D_opt / N_opt at a budget of C FLOPs."""
        return self.d_opt(flops) / self.n_opt(flops)

    def loss_at_optimum(self, flops: ArrayLike) -> np.ndarray:
        """Lowest predicted loss reachable with C FLOPs."""
        return self.loss(self.n_opt(flops), self.d_opt(flops))


class FittedFrontier:
    """N_opt(C) = k_n C^a and D_opt(C) = k_d C^b fitted directly (approaches 1 and 2); subclasses hold the numbers."""

    k_n: float
    k_d: float
    a: float
    b: float

    def n_opt(self, flops: ArrayLike) -> np.ndarray:
        """Compute-optimal parameters for C FLOPs."""
        return self.k_n * np.asarray(flops, dtype=float) ** self.a

    def d_opt(self, flops: ArrayLike) -> np.ndarray:
        """Compute-optimal tokens for C FLOPs."""
        return self.k_d * np.asarray(flops, dtype=float) ** self.b


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


def json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type with its article, for messages ("an object", "null")."""
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _fit_object(payload: Any, source: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise TableError(f"{source}: the top level is {json_kind(payload)}, not an object: pass sl-fit's fit.json")
    return payload


def _law(values: Any, source: str, where: str) -> ChinchillaLaw:
    """A ChinchillaLaw from a fit.json object; a TableError names ``source`` and the field (``where.name``)."""
    if not isinstance(values, Mapping):
        raise TableError(f"{source}: {where} is {json_kind(values)}, not an object with E, A, B, alpha, beta")
    for name in (parameter.name for parameter in fields(ChinchillaLaw)):  # E, A, B, alpha, beta
        if name not in values:
            raise TableError(f"{source}: {where}.{name} is missing; rerun sl-fit")
        value = values[name]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise TableError(f"{source}: {where}.{name} is {json_kind(value)}, not a number; rerun sl-fit")
    try:
        law = ChinchillaLaw.from_dict(dict(values))  # names the parameter that is not finite or not positive
        scale = law.G  # the frontier's scale overflows for absurd coefficients (A = 1e308)
    except (ValueError, ArithmeticError) as error:  # overflow, or a product that underflows to zero
        raise TableError(f"{source}: {where}: {error}; rerun sl-fit") from None
    if not 0 < scale < math.inf:
        raise TableError(f"{source}: {where}: the frontier scale G={scale} is not positive and finite; rerun sl-fit")
    return law
