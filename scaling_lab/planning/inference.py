"""Inference-aware allocation (Sardana et al. 2023, "Beyond Chinchilla-Optimal", §2):

    minimize over N, D_train   6 N D_train + 2 N D_inference   subject to   L(N, D_train) = target,

training at 6 FLOPs per parameter per token and inference (prefill and decode alike) at 2 — the forward
pass only (Kaplan et al. 2020, §2.1). The default target is the loss of the compute-optimal model at the
given training budget C, so the answer is "the same quality, served D_inference tokens, for the fewest total
FLOPs". On the iso-loss curve D_train(N) is closed-form (:func:`~scaling_lab.planning.laws.tokens_for_loss`);
the optimum lies between the smallest N that can reach the target and the compute-optimal N (above it both
training and inference cost grow), and is found on a log grid refined by a bounded scalar minimization.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from scaling_lab.budget import flops_6nd
from scaling_lab.errors import ConfigError
from scaling_lab.fitting.laws import ChinchillaLaw
from scaling_lab.planning.budget import flops_for_loss
from scaling_lab.planning.laws import KaplanLaw, min_params_for_loss, tokens_for_loss

INFERENCE_FLOPS_PER_PARAM_PER_TOKEN = 2.0
"""Forward pass only: 2 FLOPs per parameter per token (Kaplan et al. 2020, §2.1; Sardana et al. 2023, eq. 2)."""

_GRID_POINTS = 400
"""Log-spaced candidate sizes before the bounded refinement (the cost is unimodal in log N on the iso-loss line)."""


@dataclass(frozen=True, kw_only=True)
class Allocation:
    """One (N, D_train) choice and its lifetime cost."""

    n_params: float
    """Parameters N."""
    n_tokens: float
    """Training tokens D_train."""
    inference_tokens: float
    """Lifetime tokens served (input and output)."""

    @property
    def tokens_per_param(self) -> float:
        return self.n_tokens / self.n_params

    @property
    def training_flops(self) -> float:
        return flops_6nd(self.n_params, self.n_tokens)

    @property
    def inference_flops(self) -> float:
        return INFERENCE_FLOPS_PER_PARAM_PER_TOKEN * self.n_params * self.inference_tokens

    @property
    def total_flops(self) -> float:
        return self.training_flops + self.inference_flops


@dataclass(frozen=True, kw_only=True)
class InferencePlan:
    """The inference-aware optimum next to the compute-optimal model of the same loss."""

    target_loss: float
    """The loss both models reach."""
    optimal: Allocation
    """Fewest training + inference FLOPs at the target loss."""
    reference: Allocation
    """The compute-optimal (Chinchilla) model at the target loss, serving the same tokens."""

    @property
    def overtraining_factor(self) -> float:
        """Tokens per parameter of the optimum over those of the compute-optimal model."""
        return self.optimal.tokens_per_param / self.reference.tokens_per_param

    @property
    def saving(self) -> float:
        """Fraction of lifetime FLOPs saved against the compute-optimal model (0 when nothing is served)."""
        return 1.0 - self.optimal.total_flops / self.reference.total_flops

    def table(self) -> pd.DataFrame:
        rows = {"compute-optimal": self.reference, "inference-aware": self.optimal}
        return pd.DataFrame(
            {
                name: {
                    "N (params)": a.n_params,
                    "D_train (tokens)": a.n_tokens,
                    "tokens/param": a.tokens_per_param,
                    "training FLOPs": a.training_flops,
                    "inference FLOPs": a.inference_flops,
                    "total FLOPs": a.total_flops,
                }
                for name, a in rows.items()
            }
        ).T

    def report(self) -> str:
        lines = [
            f"inference-aware allocation (Sardana et al. 2023) at loss {self.target_loss:.4f}, "
            f"serving {self.optimal.inference_tokens:.3e} tokens:",
            self.table().to_string(float_format=lambda v: f"{v:.3e}"),
            f"over-training factor {self.overtraining_factor:.2f}x tokens/param; "
            f"lifetime FLOPs saved {100 * self.saving:.1f}%",
        ]
        return "\n".join(lines)


def lifetime_flops(
    law: ChinchillaLaw | KaplanLaw, n_params: np.ndarray, target_loss: float, inference_tokens: float
) -> np.ndarray:
    """6 N D_train(N) + 2 N D_inference along the iso-loss curve L(N, D_train) = target (inf where unreachable)."""
    n = np.asarray(n_params, dtype=float)
    return (
        flops_6nd(n, tokens_for_loss(law, n, target_loss)) + INFERENCE_FLOPS_PER_PARAM_PER_TOKEN * n * inference_tokens
    )


def inference_aware_plan(
    law: ChinchillaLaw | KaplanLaw,
    *,
    inference_tokens: float,
    flops: float | None = None,
    target_loss: float | None = None,
) -> InferencePlan:
    """Fewest training + inference FLOPs at the compute-optimal model's loss at ``flops`` (or at ``target_loss``)."""
    if inference_tokens < 0 or not np.isfinite(inference_tokens):
        raise ConfigError(f"inference_tokens={inference_tokens} must be a non-negative number of tokens")
    if (flops is None) == (target_loss is None):
        raise ConfigError("give exactly one of flops (the compute-optimal model's loss is the target) or target_loss")
    if flops is not None:
        if not flops > 0:
            raise ConfigError(f"flops={flops} must be a positive number of FLOPs")
        target = float(law.loss_at_optimum(flops))
    else:
        target = float(target_loss)  # type: ignore[arg-type]
        flops = flops_for_loss(law, target)
    n_ref = float(law.n_opt(flops))
    reference = Allocation(n_params=n_ref, n_tokens=float(law.d_opt(flops)), inference_tokens=inference_tokens)

    log_lo, log_hi = np.log(min_params_for_loss(law, target)), np.log(n_ref)
    grid = np.linspace(log_lo, log_hi, _GRID_POINTS)[1:]  # the lowest N needs infinite data
    costs = lifetime_flops(law, np.exp(grid), target, inference_tokens)
    best = int(np.argmin(costs))
    bracket = (grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)])
    refined = minimize_scalar(
        lambda x: float(lifetime_flops(law, np.exp(x), target, inference_tokens)),
        bounds=bracket,
        method="bounded",
        options={"xatol": 1e-10},
    )
    log_n = refined.x if refined.fun <= costs[best] else grid[best]
    n_opt = float(np.exp(log_n))
    optimal = Allocation(
        n_params=n_opt, n_tokens=float(tokens_for_loss(law, n_opt, target)), inference_tokens=inference_tokens
    )
    return InferencePlan(target_loss=target, optimal=optimal, reference=reference)


REFERENCE_MODELS: dict[str, tuple[float, float]] = {
    "GPT-3 175B": (175e9, 300e9),  # Brown et al. 2020, Table D.1: 175B parameters, 300B training tokens
    "Chinchilla 70B": (70e9, 1.4e12),  # Hoffmann et al. 2022, Table 4: 70B parameters, 1.4T tokens
    "Llama-3-8B-style": (8e9, 15e12),  # Llama 3 model card (Meta 2024): 8B parameters, 15T+ tokens
}
"""(N, D) of the classic allocation examples. N counts all parameters as published."""


def reference_models_table(
    law: ChinchillaLaw | KaplanLaw, models: dict[str, tuple[float, float]] | None = None
) -> pd.DataFrame:
    """Tokens/param, training FLOPs (6ND), inference FLOPs/token (2N), predicted loss, and the law's
    compute-optimal loss and N at the same training FLOPs, one row per model."""
    rows = {}
    for name, (n, d) in (models or REFERENCE_MODELS).items():
        flops = flops_6nd(n, d)
        rows[name] = {
            "N (params)": n,
            "D (tokens)": d,
            "tokens/param": d / n,
            "training FLOPs": flops,
            "inference FLOPs/token": INFERENCE_FLOPS_PER_PARAM_PER_TOKEN * n,
            "predicted loss": float(law.loss(n, d)),
            "optimal loss at same C": float(law.loss_at_optimum(flops)),
            "N_opt at same C": float(law.n_opt(flops)),
        }
    return pd.DataFrame(rows).T
