"""Learning-rate schedules as pure functions of the step, and the WSD cooldown plan.

``step`` is 0-based: ``lr(step)`` is the rate of the step-th optimizer update. Every schedule warms up linearly
from peak/W to peak over the first W updates.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from scaling_lab.config.training import ScheduleConfig
from scaling_lab.errors import ConfigError


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warmup: (step+1)/W for step < W, else 1."""
    return (step + 1) / warmup_steps if step < warmup_steps else 1.0


def cosine_lr(step: int, *, peak: float, warmup_steps: int, total_steps: int, final_fraction: float) -> float:
    """Warmup, then a half cosine from peak to final_fraction·peak reached exactly at the last step (total-1)."""
    if step < warmup_steps:
        return peak * warmup_factor(step, warmup_steps)
    progress = min(1.0, (step - warmup_steps + 1) / max(1, total_steps - warmup_steps))
    floor = final_fraction * peak
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def constant_lr(step: int, *, peak: float, warmup_steps: int) -> float:
    """Warmup, then the peak."""
    return peak * warmup_factor(step, warmup_steps)


def wsd_lr(step: int, *, peak: float, warmup_steps: int, cooldown_start: int, cooldown_steps: int, shape: str) -> float:
    """Warmup–stable–decay: warmup, flat peak, then from ``cooldown_start`` a decay to 0 at the last step.

    1-sqrt: peak·(1 − √p), linear: peak·(1 − p), with p = (step − start + 1)/cooldown_steps (Hägele et al. 2024).
    """
    if step < cooldown_start:
        return constant_lr(step, peak=peak, warmup_steps=warmup_steps)
    progress = min(1.0, (step - cooldown_start + 1) / cooldown_steps)
    decayed = 1.0 - math.sqrt(progress) if shape == "1-sqrt" else 1.0 - progress
    return peak * warmup_factor(step, warmup_steps) * decayed


@dataclass(frozen=True, kw_only=True)
class Cooldown:
    """One WSD cooldown: branch from the stable phase at ``start`` and evaluate after ``end`` steps."""

    start: int
    """First step of the decay."""
    end: int
    """Steps done when the cooldown finishes (its point's D = end × tokens_per_step)."""


def wsd_cooldowns(end_steps: list[int], *, fraction: float, warmup_steps: int) -> list[Cooldown]:
    """The cooldowns for a WSD run whose points end at ``end_steps`` (each decays over fraction × its length).

    A branch that would start inside the warmup is skipped with a warning: in an isoFLOP sweep the largest model's
    smallest budget can be shorter than its warmup, and that one point should not stop the whole sweep. The run's
    own end (the largest) is never skipped.
    """
    cooldowns = []
    ends = sorted(set(end_steps))
    for end in ends:
        length = max(1, round(fraction * end))
        start = end - length
        if start < warmup_steps:
            problem = (
                f"schedule.cooldown_budgets: the cooldown ending at step {end} would start at step {start},"
                f" inside the {warmup_steps}-step warmup"
            )
            if end == ends[-1]:
                raise ConfigError(f"{problem}: raise the budget or shorten schedule.warmup_tokens")
            warnings.warn(f"{problem}: that point is skipped (shorten schedule.warmup_tokens to keep it)", stacklevel=2)
            continue
        cooldowns.append(Cooldown(start=start, end=end))
    return cooldowns


def lr_at(
    step: int, config: ScheduleConfig, *, peak: float, warmup_steps: int, total_steps: int, cooldown: Cooldown | None
) -> float:
    """The rate of update ``step`` for a schedule config; ``cooldown`` is the WSD branch being run (if any)."""
    if config.kind == "cosine":
        return cosine_lr(
            step, peak=peak, warmup_steps=warmup_steps, total_steps=total_steps, final_fraction=config.final_lr_fraction
        )
    if config.kind == "constant" or cooldown is None:
        return constant_lr(step, peak=peak, warmup_steps=warmup_steps)
    return wsd_lr(
        step,
        peak=peak,
        warmup_steps=warmup_steps,
        cooldown_start=cooldown.start,
        cooldown_steps=cooldown.end - cooldown.start,
        shape=config.cooldown_shape,
    )
