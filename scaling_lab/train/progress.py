"""A run's progress: the state that checkpoints carry besides weights and optimizer, and its measurements."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from scaling_lab.budget import flops_6nd
from scaling_lab.data import UNION
from scaling_lab.train.plan import TrainPlan
from scaling_lab.train.step import Scores


@dataclass(kw_only=True)
class Progress:
    """Mutable run progress (plain values only, so a weights-only checkpoint load restores it)."""

    step: int = 0
    """Optimizer steps done on the main line (= data position: the next step reads sequences step·B…)."""
    curve: list[dict[str, Any]] = field(default_factory=list)
    """Eval points of the main line: n_tokens, flops_6nd, flops_exact, loss, losses, bpb, train_loss."""
    points: list[dict[str, Any]] = field(default_factory=list)
    """RunPoints (the final eval, or one per WSD cooldown): n_tokens, flops_6nd, flops_exact, loss, losses, bpb,
    train_loss."""
    best_loss: float = math.inf
    """Lowest training loss so far (the divergence reference)."""
    train_loss: float | None = None
    """Last training loss."""
    train_seconds: float = 0.0
    """Seconds spent in optimizer steps (all segments, across resumes): the tokens/s denominator."""
    trained_tokens: int = 0
    """Tokens trained including WSD cooldown branches: the tokens/s numerator."""
    diverged_at_step: int | None = None
    """Step at which the loss blew up; None unless diverged."""
    reason: str = ""
    """Why the run stopped early ('' if it did not)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain values for the checkpoint."""
        return dataclasses.asdict(self)


def measurement(plan: TrainPlan, *, steps: int, scores: Scores, train_loss: float | None) -> dict[str, Any]:
    """An eval at ``steps`` optimizer steps as a curve / run point: D, C (6ND with N the active total, which is
    every parameter of a dense model; exact), the union's loss and every eval set's loss and bits per byte."""
    n_tokens = plan.tokens_after(steps)
    return {
        "n_tokens": n_tokens,
        "flops_6nd": flops_6nd(plan.n_params_active, n_tokens),
        "flops_exact": plan.flops_per_token_exact * n_tokens,
        "loss": scores.loss,
        "losses": dict(scores.losses),
        "bpb": dict(scores.bpb),
        "train_loss": train_loss,
    }


def tracked_scores(point: dict[str, Any]) -> dict[str, float]:
    """A measurement's losses as tracker keys: eval/loss and eval/bpb for the union, eval/<set>/loss and
    eval/<set>/bpb for each eval set."""
    values = {"eval/loss": point["loss"], "eval/bpb": point["bpb"][UNION]}
    for name in point["losses"]:
        if name != UNION:
            values[f"eval/{name}/loss"], values[f"eval/{name}/bpb"] = point["losses"][name], point["bpb"][name]
    return values
