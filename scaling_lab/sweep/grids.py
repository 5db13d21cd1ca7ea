"""Grid arithmetic that sweep files use through OmegaConf resolvers.

An isoFLOP slice wants its sizes to move with its budget: at compute C the sizes bracket the expected optimum
N*(C) ∝ C^a, so a Cartesian product of fixed sizes × budgets wastes most points. A sweep file therefore sweeps a
*rank* and derives each point's target non-embedding N from its budget:

    model.target_n: ${sl.isoflop_n:${budget.value},${grid.rank},${grid.center_n},${grid.center_flops},
                                   ${grid.exponent},${grid.ratio}}    (on one line)

    N(C, rank) = center_n · (C / center_flops)^exponent · ratio^rank

and a tokens-per-parameter ladder derives D from N (``budget.kind=tokens_per_param``). Registered on import.
"""

from __future__ import annotations

from omegaconf import OmegaConf

from scaling_lab.errors import ConfigError


def isoflop_target_n(
    flops: float, rank: float, center_n: float, center_flops: float, exponent: float, ratio: float
) -> float:
    """Target non-embedding N of size ``rank`` on the isoFLOP slice at ``flops``."""
    values = {"budget.value": flops, "grid.center_n": center_n, "grid.center_flops": center_flops, "grid.ratio": ratio}
    for name, value in values.items():
        if not float(value) > 0:
            raise ConfigError(f"{name}={value} must be > 0 for an isoFLOP grid")
    return float(center_n) * (float(flops) / float(center_flops)) ** float(exponent) * float(ratio) ** float(rank)


def register_resolvers() -> None:
    """Make ``${sl.isoflop_n:...}`` available to configs (idempotent)."""
    if not OmegaConf.has_resolver("sl.isoflop_n"):
        OmegaConf.register_new_resolver("sl.isoflop_n", isoflop_target_n)


register_resolvers()
