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
"""

from __future__ import annotations

from dataclasses import dataclass

from scaling_lab.errors import ConfigError

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
