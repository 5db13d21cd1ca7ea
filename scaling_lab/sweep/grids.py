"""Grid points, and the grid arithmetic that sweep files use through OmegaConf resolvers.

A :class:`GridPoint` is one job of a sweep: the overrides that make it and its validated config
(``scaling_lab.cli.compose.expand_grid`` builds them from ``sl-train -m`` overrides and the sweep file).

An isoFLOP slice wants its sizes to move with its budget: at compute C the sizes bracket the expected optimum
N*(C) ∝ C^a, so a Cartesian product of fixed sizes × budgets wastes most points. A sweep file therefore sweeps a
*rank* and derives each point's target non-embedding N from its budget:

    model.target_n: ${sl.isoflop_n:${budget.value},${grid.rank},${grid.center_n},${grid.center_flops},
                                   ${grid.exponent},${grid.ratio}}    (on one line)

    N(C, rank) = center_n · (C / center_flops)^exponent · ratio^rank

and a tokens-per-parameter ladder derives D from N (``budget.kind=tokens_per_param``).

A grid can also be an explicit list of points, each budget with its own sizes (configs/experiment/quickstart.yaml):

    grid: {point: 0, points: [[n1k, 1e11], [n3k, 1e11], ...]}
    model: {preset: "${sl.pick:${grid.points},${grid.point},0}"}
    hydra.sweeper.params: {grid.point: "range(0,14)"}

The entry points register them as OmegaConf resolvers (``scaling_lab.cli.compose.register_resolvers``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scaling_lab.config.schema import RunConfig
from scaling_lab.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class GridPoint:
    """One job of the sweep: its overrides and its validated config."""

    overrides: tuple[str, ...]
    """The Hydra overrides that make this point (as a multirun job would receive them)."""
    config: RunConfig
    """The composed, validated config."""
    runs_here: bool = True
    """Whether the sweep's launcher runs this point on this host (a SLURM launcher runs it on other machines)."""
    launcher_tasks: int = 1
    """Processes the launcher starts for this point, which train it together: a SLURM job's tasks (tasks_per_node
    × nodes); 1 on this host, where the ``processes`` setting says."""


def isoflop_target_n(
    flops: float, rank: float, center_n: float, center_flops: float, exponent: float, ratio: float
) -> float:
    """Target non-embedding N of size ``rank`` on the isoFLOP slice at ``flops``."""
    values = {"budget.value": flops, "grid.center_n": center_n, "grid.center_flops": center_flops, "grid.ratio": ratio}
    for name, value in values.items():
        if not float(value) > 0:
            raise ConfigError(f"{name}={value} must be > 0 for an isoFLOP grid")
    return float(center_n) * (float(flops) / float(center_flops)) ** float(exponent) * float(ratio) ** float(rank)


def pick(points: Any, point: int, column: int) -> Any:
    """``points[point][column]`` for an explicit list of grid points, with an error naming the fields."""
    if not 0 <= int(point) < len(points):
        raise ConfigError(f"grid.point={point} is outside grid.points (0 to {len(points) - 1}): fix the sweep's range")
    row = points[int(point)]
    if not 0 <= int(column) < len(row):
        raise ConfigError(f"grid.points[{point}]={list(row)} has no column {column}")
    return row[int(column)]
