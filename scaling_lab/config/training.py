"""The training sections of a run's config: AdamW and batch settings, and the learning-rate schedule.

They are read by ``train/`` (``optim.py``, ``schedule.py``, ``rules.py``) but defined here, below it: ``train``
imports the run config, so the sections the run config is made of cannot live above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from scaling_lab.errors import ConfigError

SCHEDULE_KINDS = ("cosine", "constant", "wsd")
COOLDOWN_SHAPES = ("1-sqrt", "linear")


@dataclass(kw_only=True)
class ScheduleConfig:
    """Learning-rate schedule; the length always equals the run's budget (docs/ARCHITECTURE.md, "D")."""

    kind: str = "cosine"
    """cosine (warmup + cosine to final_lr_fraction), constant (warmup + flat), or wsd (warmup–stable–decay)."""
    warmup_tokens: Optional[float] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    """Warmup length in tokens; None → N tokens (Porian et al. 2024 §3.3: warmup ≈ model size; see rules.py)."""
    final_lr_fraction: float = 0.1
    """Cosine floor as a fraction of the peak: Hoffmann et al. 2022 (Chinchilla §3 / App. B) decay 10×."""
    cooldown_fraction: float = 0.2
    """WSD cooldown length as a fraction of each cooldown's D: Hägele et al. 2024 §3 (20 % matches cosine)."""
    cooldown_shape: str = "1-sqrt"
    """WSD cooldown shape: 1-sqrt (Hägele et al. 2024 §3, better than linear) or linear; decays to 0."""
    cooldown_budgets: list[float] = field(default_factory=list)
    """Extra budgets below ``budget.value``, in its unit (tokens, FLOPs or tokens per parameter, as
    ``budget.kind`` says), at which a WSD run branches a cooldown and records a point: with a FLOP budget one run
    per size gives a point on every isoFLOP slice."""

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ConfigError(f"schedule.kind={self.kind!r} is unknown: choose one of {', '.join(SCHEDULE_KINDS)}")
        if self.warmup_tokens is not None and self.warmup_tokens < 0:
            raise ConfigError(f"schedule.warmup_tokens={self.warmup_tokens} must be ≥ 0 (or null for the rule)")
        if not 0 <= self.final_lr_fraction <= 1:
            raise ConfigError(f"schedule.final_lr_fraction={self.final_lr_fraction} must lie in [0, 1]")
        if not 0 < self.cooldown_fraction <= 1:
            raise ConfigError(f"schedule.cooldown_fraction={self.cooldown_fraction} must lie in (0, 1]")
        if self.cooldown_shape not in COOLDOWN_SHAPES:
            raise ConfigError(f"schedule.cooldown_shape={self.cooldown_shape!r}: choose one of {COOLDOWN_SHAPES}")
        if any(not t > 0 for t in self.cooldown_budgets):
            raise ConfigError(f"schedule.cooldown_budgets={list(self.cooldown_budgets)} must all be > 0")
        if self.cooldown_budgets and self.kind != "wsd":
            raise ConfigError("schedule.cooldown_budgets is set but schedule.kind is not wsd: set schedule=wsd")


@dataclass(kw_only=True)
class OptimConfig:
    """AdamW and batch settings; a null field takes its per-size rule from ``train/rules.py``."""

    lr: Optional[float] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    """Peak learning rate; null → DeepSeek LLM 2024 rule from the run's compute."""
    batch_tokens: Optional[int] = None  # noqa: UP045
    """Predicted tokens per optimizer step (a multiple of data.sequence_length); null → DeepSeek LLM 2024 rule."""
    micro_batch_sequences: Optional[int] = None  # noqa: UP045
    """Sequences per forward/backward (gradient accumulation splits the batch); null → the whole batch. With
    ``batch_tokens`` null the rule's batch is rounded to whole micro-batches."""
    beta1: float = 0.9
    """AdamW β1 (Kingma & Ba 2015 default; Llama, Chinchilla use 0.9)."""
    beta2: Optional[float] = None  # noqa: UP045
    """AdamW β2; null → 0.99 under 100k-token batches, else 0.95 (Porian et al. 2024)."""
    eps: float = 1e-8
    """AdamW ε (PyTorch default; Llama 2 uses 1e-5 at 7B+, irrelevant at our scale)."""
    weight_decay: float = 0.1
    """Decoupled weight decay on matrices (Touvron et al. 2023, Llama 2: 0.1); norms and embeddings get none."""
    grad_clip: float = 1.0
    """Global gradient-norm clip (Llama 2: 1.0); 0 disables."""
    fused: Optional[bool] = None  # noqa: UP045
    """Fused AdamW kernel; null → on where torch has one (CUDA, and CPU since torch 2.4)."""

    def fused_on(self, device_type: str) -> bool:
        """Whether AdamW runs fused on a ``device_type`` device: ``fused`` when set, else where torch has the kernel.

        On CPU the fused step is one kernel per parameter instead of a Python loop of small ops: 0.68 → 0.20 ms
        per step for the 2-layer width-8 model (6 % of its step), with the same update up to float rounding."""
        return self.fused if self.fused is not None else device_type in ("cuda", "cpu")

    def __post_init__(self) -> None:
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"optim.lr={self.lr} must be > 0 (e.g. optim.lr=3e-3, or null for the per-size rule)")
        for name in ("batch_tokens", "micro_batch_sequences"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"optim.{name}={value} must be ≥ 1 (or null for the default)")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise ConfigError(f"optim.{name}={value} must lie in [0, 1)")
        if self.weight_decay < 0 or self.grad_clip < 0 or not self.eps > 0:
            raise ConfigError("optim.weight_decay and optim.grad_clip must be ≥ 0 and optim.eps > 0")
