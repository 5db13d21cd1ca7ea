"""Mixture-of-experts sizes for a law stated on active parameters.

A law fitted on active parameters (those that touch each token; training FLOPs ≈ 6 N_active D as for a dense
model, Kaplan et al. 2020 §2.1 applied to the routed path) gives an N_opt that is *active*. To size the MoE
that has it, we assume (documented, not measured):

* A fraction ``expert_fraction`` of the active parameters sits in the routed feed-forward experts; the rest
  (attention, embeddings, norms, any shared expert) is used by every token. For a dense transformer with a
  4x MLP the FFN holds 8d² of the 12d² parameters per layer, i.e. 2/3 of non-embedding N
  (Kaplan et al. 2020, Table 1), which is the default.
* All experts have the same size and ``experts_per_token`` of ``n_experts`` are active per token (top-k routing,
  Shazeer et al. 2017; Fedus et al. 2022). Router weights (d_model x n_experts per layer) are ignored: they are
  below 0.1% of N for any model here.
* Every expert's weights are resident in accelerator memory at ``bytes_per_param`` (2 for bf16); optimizer state,
  activations and KV cache are not counted.

Then ``total = active * (1 - f + f * n_experts / experts_per_token)``.

With a unified law fitted on our own dense and MoE runs (``scaling_lab.fitting.moe_law``), :func:`moe_law_report`
replaces the assumption that an MoE needs the dense N_opt active: it sizes the MoE whose active N the law puts
level with the dense N_opt (fewer active parameters, by the effective-parameter multiplier).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scaling_lab.errors import ConfigError
from scaling_lab.fitting.moe_law import MoELawFit, saturated_experts

BF16_BYTES = 2
"""bfloat16 weights: 2 bytes per parameter."""

DENSE_FFN_FRACTION = 2.0 / 3.0
"""FFN share of non-embedding parameters with a 4x MLP: 8d² of 12d² per layer (Kaplan et al. 2020, Table 1)."""


@dataclass(frozen=True, kw_only=True)
class MoEConfig:
    """How the active parameters spread over experts."""

    n_experts: int
    """Routed experts per MoE layer."""
    experts_per_token: int
    """Experts each token is routed to (top-k)."""
    expert_fraction: float = DENSE_FFN_FRACTION
    """Share of active parameters that sits in the routed experts."""
    bytes_per_param: float = BF16_BYTES
    """Bytes per stored weight."""

    def __post_init__(self) -> None:
        if self.n_experts < 1:
            raise ConfigError(f"moe.n_experts={self.n_experts} must be at least 1")
        if not 1 <= self.experts_per_token <= self.n_experts:
            raise ConfigError(
                f"moe.experts_per_token={self.experts_per_token} must lie in 1..moe.n_experts={self.n_experts}"
            )
        if not 0.0 <= self.expert_fraction < 1.0:
            raise ConfigError(f"moe.expert_fraction={self.expert_fraction} must lie in [0, 1)")
        if not self.bytes_per_param > 0:
            raise ConfigError(f"moe.bytes_per_param={self.bytes_per_param} must be positive (2 for bf16)")


@dataclass(frozen=True, kw_only=True)
class MoESizes:
    """Active vs total parameters and weight memory of one MoE."""

    active_params: float
    """Parameters each token uses (what the law's N counts)."""
    total_params: float
    """All stored parameters."""
    expert_params: float
    """Parameters of one expert, summed over layers."""
    weight_bytes: float
    """Memory for all weights."""

    def report(self) -> str:
        return (
            f"MoE: {self.active_params:.3e} active / {self.total_params:.3e} total params "
            f"({self.total_params / self.active_params:.2f}x), one expert {self.expert_params:.3e}, "
            f"weights {self.weight_bytes / 2**30:.1f} GiB"
        )


def moe_sizes(active_params: float, moe: MoEConfig) -> MoESizes:
    """Total parameters and weight memory of the MoE whose active parameter count is ``active_params``."""
    routed_active = moe.expert_fraction * active_params
    expert = routed_active / moe.experts_per_token
    total = active_params - routed_active + moe.n_experts * expert
    return MoESizes(
        active_params=active_params, total_params=total, expert_params=expert, weight_bytes=total * moe.bytes_per_param
    )


def active_for_dense_equivalent(law: MoELawFit, dense_params: float, n_experts: int) -> float:
    """Active N of the E-expert MoE that a fitted unified law puts level with a dense model of ``dense_params``.

    The MoE at active N matches the dense model of N̄ = N·multiplier(N, E), and log N̄ = log N + (b + c·log N)·log Ê/a
    (Clark et al. 2022's effective parameter count) is linear in log N, so
    the equal-loss condition solves for log N in closed form (a dense Ê(1) = E_start ≠ 1 keeps its own Ê terms)."""
    log_dense = math.log(dense_params)
    log_e = math.log(float(saturated_experts(n_experts, law.e_start, law.e_max)))
    log_e1 = math.log(float(saturated_experts(1, law.e_start, law.e_max)))
    # a·log N̄ + b·log Ê₁ + c·log N̄·log Ê₁ = a·log N + b·log Ê + c·log N·log Ê  (equal losses, d cancels)
    log_active = (log_dense * (law.a + law.c * log_e1) + law.b * (log_e1 - log_e)) / (law.a + law.c * log_e)
    return math.exp(log_active)


def moe_law_report(law: MoELawFit, dense_params: float, moe: MoEConfig) -> str:
    """sl-budget's lines for an MoE planned from a fitted unified law: the active N that matches the dense N_opt,
    its multiplier, stored parameters and weight memory."""
    active = active_for_dense_equivalent(law, dense_params, moe.n_experts)
    sizes = moe_sizes(active, moe)
    multiplier = float(law.multiplier(active, moe.n_experts))
    return (
        f"MoE from the fitted law ({law.n_params_column}, D={law.n_tokens:.3g}): E={moe.n_experts}, "
        f"k={moe.experts_per_token} matches the dense N={dense_params:.3e} with {active:.3e} active params "
        f"(multiplier {multiplier:.3g}x; the law was fitted around N = {law.reference_n:.3g})\n{sizes.report()}"
    )
