"""Laws the planner can use: the Chinchilla law (from ``scaling_lab.fitting.laws``), Kaplan 2020, and fit.json files.

Every law offers the same frontier interface as :class:`~scaling_lab.fitting.laws.ChinchillaLaw`:
``loss(N, D)``, ``a``, ``b``, ``G``, ``n_opt(C)``, ``d_opt(C)``, ``tokens_per_param(C)`` and
``loss_at_optimum(C)``, with C = 6 N D, or C in a fit's own FLOPs when given its ``per_token`` function (a fit on
exact FLOPs records it in fit.json). :func:`tokens_for_loss` inverts ``loss`` in D.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from scaling_lab.budget import SIX_ND, FlopsPerToken
from scaling_lab.errors import ConfigError, FitError, TableError
from scaling_lab.fitting.approach3 import Approach3Result
from scaling_lab.fitting.laws import (
    BESIROGLU_2024,
    CHINCHILLA_APPROACH3,
    ChinchillaLaw,
    PowerLawFrontier,
    approach3_laws,
    fit_per_token,
    json_kind,
    read_fit_json,
)
from scaling_lab.fitting.run import FitOutcome


class LossLaw(Protocol):
    """What the planner needs from a law: the loss surface and its compute-optimal frontier (C = 6 N D by default,
    C = per_token(N)·D when given)."""

    @property
    def a(self) -> float: ...
    @property
    def b(self) -> float: ...
    @property
    def G(self) -> float: ...
    def loss(self, n_params: ArrayLike, n_tokens: ArrayLike) -> np.ndarray: ...
    def n_opt(self, flops: ArrayLike, per_token: FlopsPerToken = SIX_ND) -> np.ndarray: ...
    def d_opt(self, flops: ArrayLike, per_token: FlopsPerToken = SIX_ND) -> np.ndarray: ...
    def loss_at_optimum(self, flops: ArrayLike, per_token: FlopsPerToken = SIX_ND) -> np.ndarray: ...
    def tokens_at_optimum(self, n_params: ArrayLike, elasticity: ArrayLike) -> np.ndarray: ...
    def flops_for_n_opt(self, n_params: ArrayLike, per_token: FlopsPerToken = SIX_ND) -> np.ndarray: ...
    def flops_for_d_opt(self, n_tokens: ArrayLike, per_token: FlopsPerToken = SIX_ND) -> np.ndarray: ...


@dataclass(frozen=True, kw_only=True)
class KaplanLaw(PowerLawFrontier):
    """L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. 2020, eq. 1.5; N excludes embeddings).

    Minimizing L subject to C = 6 N D: with r = alpha_N/alpha_D, setting d/dN [(N_c/N)^r + 6 N D_c / C] = 0 gives
    N_opt^(1+r) = r N_c^r (C/6) / D_c, i.e. N_opt = G (C/6)^a with a = 1/(1+r) = alpha_D/(alpha_N+alpha_D) and
    G = (r N_c^r / D_c)^(1/(1+r)). (Kaplan's N ∝ C^0.73 comes from their L(N, S) early-stopping analysis, §6,
    not from eq. 1.5 on the 6ND line, which gives a ≈ 0.56.)
    """

    alpha_N: float = 0.076
    """Exponent of N (Kaplan et al. 2020, Table 5)."""
    alpha_D: float = 0.095
    """Exponent of D (Kaplan et al. 2020, Table 5)."""
    N_c: float = 8.8e13
    """Non-embedding parameter scale (Kaplan et al. 2020, Table 5)."""
    D_c: float = 5.4e13
    """Token scale (Kaplan et al. 2020, Table 5)."""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"KaplanLaw.{name} must be a positive finite number, got {value}")

    @property
    def _ratio(self) -> float:
        return self.alpha_N / self.alpha_D

    def loss(self, n_params: ArrayLike, n_tokens: ArrayLike) -> np.ndarray:
        """Predicted loss (nats/token) at N non-embedding parameters trained on D tokens."""
        n = np.asarray(n_params, dtype=float)
        d = np.asarray(n_tokens, dtype=float)
        return ((self.N_c / n) ** self._ratio + self.D_c / d) ** self.alpha_D

    def tokens_at_optimum(self, n_params: ArrayLike, elasticity: ArrayLike) -> np.ndarray:
        """r (N_c/N)^r = g D_c / D at the optimum (the derivation above with g = d log C / d log N at fixed D),
        so D = g D_c (N/N_c)^r / r."""
        n, g = np.asarray(n_params, dtype=float), np.asarray(elasticity, dtype=float)
        return g * self.D_c * (n / self.N_c) ** self._ratio / self._ratio

    @property
    def a(self) -> float:
        """Exponent of N_opt ∝ C^a on the 6ND line."""
        return 1.0 / (1.0 + self._ratio)

    @property
    def b(self) -> float:
        """Exponent of D_opt ∝ C^b (a + b = 1)."""
        return 1.0 - self.a

    @property
    def G(self) -> float:
        """Scale of the frontier: N_opt(C) = G (C/6)^a."""
        return (self._ratio * self.N_c**self._ratio / self.D_c) ** self.a


KAPLAN_2020 = KaplanLaw()
"""Kaplan et al. 2020, eq. 1.5 with Table 5's constants (loss in nats/token on WebText2, non-embedding N)."""

PUBLISHED_LAWS: dict[str, ChinchillaLaw | KaplanLaw] = {
    "chinchilla": CHINCHILLA_APPROACH3,
    "besiroglu2024": BESIROGLU_2024,
    "kaplan2020": KAPLAN_2020,
}
"""Named published laws accepted wherever a law is asked for (``law=chinchilla``)."""


def tokens_for_loss(law: ChinchillaLaw | KaplanLaw, n_params: ArrayLike, target_loss: float) -> np.ndarray:
    """Tokens D with L(N, D) = target, per N; +inf where N alone cannot reach the target (closed forms)."""
    n = np.asarray(n_params, dtype=float)
    if isinstance(law, ChinchillaLaw):
        # B / D^beta = L - E - A / N^alpha
        gap = target_loss - law.E - law.A / n**law.alpha
        with np.errstate(divide="ignore", invalid="ignore"):
            tokens = (law.B / gap) ** (1.0 / law.beta)
    elif isinstance(law, KaplanLaw):
        # D_c / D = L^(1/alpha_D) - (N_c/N)^r
        gap = target_loss ** (1.0 / law.alpha_D) - (law.N_c / n) ** law._ratio
        with np.errstate(divide="ignore", invalid="ignore"):
            tokens = law.D_c / gap
    else:
        raise TypeError(f"tokens_for_loss: unsupported law type {type(law).__name__}")
    return np.where(gap > 0, tokens, np.inf)


def min_params_for_loss(law: ChinchillaLaw | KaplanLaw, target_loss: float) -> float:
    """The N below which no amount of data reaches the target loss (D → ∞); 0 if the target is unreachable."""
    if isinstance(law, ChinchillaLaw):
        gap = target_loss - law.E
        return float((law.A / gap) ** (1.0 / law.alpha)) if gap > 0 else np.inf
    if isinstance(law, KaplanLaw):
        return float(law.N_c / target_loss ** (1.0 / law.alpha_N))
    raise TypeError(f"min_params_for_loss: unsupported law type {type(law).__name__}")


def law_parameters(law: ChinchillaLaw | KaplanLaw) -> dict[str, float]:
    """The law's parameters plus its frontier (a, b, G), as floats."""
    values = {k: float(v) for k, v in asdict(law).items()}
    return values | {"a": float(law.a), "b": float(law.b), "G": float(law.G)}


@dataclass(frozen=True, kw_only=True)
class LoadedLaw:
    """A law with where it came from and, for a bootstrapped fit, one law per bootstrap sample."""

    law: ChinchillaLaw | KaplanLaw
    """Point estimate."""
    source: str
    """Published name or fit.json path."""
    samples: tuple[ChinchillaLaw, ...] = field(default=())
    """Bootstrap refits (empty for published laws and unbootstrapped fits)."""
    n_params_column: str = "n_params_nonembed"
    """Which N the law is stated on (fit.json's ``n_params_column``; non-embedding for the published laws)."""
    per_token: FlopsPerToken = SIX_ND
    """The C its frontier is solved along (fit.json's ``flops_per_token``; 6ND for published laws and for fit.json
    written before it was recorded)."""

    @classmethod
    def from_result(cls, result: Approach3Result, *, source: str) -> LoadedLaw:
        """The law of an approach-3 fit in memory, with its bootstrap laws, its N and its FLOPs per token."""
        samples = tuple(ChinchillaLaw(**sample) for sample in result.bootstrap_samples or ())
        return cls(law=result.law, source=source, samples=samples, n_params_column=result.n_params_column,
                   per_token=result.flops_per_token)  # fmt: skip

    @classmethod
    def from_outcome(cls, outcome: FitOutcome, *, source: str) -> LoadedLaw:
        """The approach-3 law of a fit in memory (what :func:`load_law` reads from its fit.json)."""
        result = outcome.results.get("approach3")
        if not isinstance(result, Approach3Result):
            raise FitError(f"{source}: the fit has no approach 3 ({outcome.skipped.get('approach3', 'not run')})")
        column = outcome.meta.get("n_params_column", result.n_params_column)
        return replace(cls.from_result(result, source=source), n_params_column=column)


def load_law(spec: str | Path) -> LoadedLaw:
    """A named published law (see :data:`PUBLISHED_LAWS`) or the ``approach3`` block of a fit.json path."""
    text = str(spec)
    if text.lower() in PUBLISHED_LAWS:
        return LoadedLaw(law=PUBLISHED_LAWS[text.lower()], source=text.lower())
    path = Path(text)
    if not path.is_file():
        names = ", ".join(PUBLISHED_LAWS)
        raise ConfigError(f"law={text!r} is neither a published law ({names}) nor an existing fit.json path")
    return law_from_fit_dict(read_fit_json(path), source=str(path))


def law_from_fit_dict(payload: Any, *, source: str) -> LoadedLaw:
    """The approach-3 law of a fit.json payload with its bootstrap laws, the N it is stated on and the FLOPs per
    token its frontier is solved in; a TableError names ``source`` and the field that is missing or of the wrong
    type."""
    law, samples = approach3_laws(payload, source)
    block = payload["approach3"]
    column = payload.get("n_params_column", block.get("n_params_column", "n_params_nonembed"))
    if not isinstance(column, str):
        raise TableError(f"{source}: n_params_column is {json_kind(column)}, not a column name; rerun sl-fit")
    return LoadedLaw(law=law, source=source, samples=samples, n_params_column=column,
                     per_token=fit_per_token(payload, source))  # fmt: skip
