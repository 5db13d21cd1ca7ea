"""The parametric loss law L(N, D) = E + A/N^alpha + B/D^beta and its compute-optimal frontier.

Hoffmann et al. 2022 ("Chinchilla"), eq. 2 for the law and eq. 4 / Appendix D.2 for the frontier:
minimizing L subject to C = 6 N D gives

    N_opt(C) = G (C/6)^a,   D_opt(C) = G^-1 (C/6)^b,
    a = beta / (alpha + beta),   b = alpha / (alpha + beta),   G = (alpha A / (beta B))^(1/(alpha+beta)).

N is parameters, D training tokens, C training FLOPs. All functions accept scalars or numpy arrays.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

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
