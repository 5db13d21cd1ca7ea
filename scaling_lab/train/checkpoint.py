"""Checkpoints: atomic writes, weights-only loads, everything needed for an exact resume.

A checkpoint holds the model and optimizer state, the step (which is also the data position: step s trains
on sequences [s·B, (s+1)·B)), the torch RNG states, and the run's progress so far (curve, points, best loss).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from scaling_lab.atomic import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: temp file in the same folder, fsync, rename."""
    with atomic_path(path) as temp:
        torch.save(state, temp)


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any] | None:
    """The checkpoint at ``path`` loaded weights-only (no pickled code runs), or None if there is none."""
    if not path.exists():
        return None
    return torch.load(path, map_location=device, weights_only=True)


def rng_state() -> dict[str, Any]:
    """torch's CPU (and CUDA, when present) generator states."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["cpu"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_run_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, progress: dict) -> None:
    """Checkpoint a run: weights, optimizer, RNG, and its progress (plain values)."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "rng": rng_state()}
    save_checkpoint(path, {**state, "progress": progress})


def restore_run_state(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> dict[str, Any] | None:
    """Load a run's checkpoint into ``model`` and ``optimizer``, restore the RNG; its progress, or None if absent."""
    state = load_checkpoint(path, device)
    if state is None:
        return None
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return state["progress"]
