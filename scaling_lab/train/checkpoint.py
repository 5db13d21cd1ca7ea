"""Checkpoints: atomic writes, weights-only loads, everything needed for an exact resume.

A checkpoint holds the model and optimizer state, the step (which is also the data position: step s trains
on sequences [s·B, (s+1)·B)), the torch RNG states, and the run's progress so far (curve, points, best loss).
The state is stored as one process holds it, also when several trained the run (rank 0 writes it; FSDP2 shards are
gathered first), so a run resumes with any number of processes.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from scaling_lab.atomic import atomic_path
from scaling_lab.errors import CheckpointError
from scaling_lab.train.distributed import full_state, load_full_state

CHECKPOINT_NAME = "checkpoint.pt"
RUN_STATE_KEYS = ("model", "optimizer", "rng", "progress")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: temp file in the same folder, fsync, rename."""
    with atomic_path(path) as temp:
        torch.save(state, temp)


def load_checkpoint(path: Path, device: torch.device, *, mmap: bool = False) -> dict[str, Any] | None:
    """The checkpoint at ``path`` loaded weights-only (no pickled code runs), or None if there is none.

    A file that the weights-only unpickler refuses (it holds some other object) or cannot read (corrupt, truncated)
    is never loaded another way: CheckpointError names it and says to delete it. ``mmap`` maps the tensors instead of
    reading them (a cheap check of a large checkpoint)."""
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location=device, weights_only=True, mmap=mmap)
    except Exception as error:  # whatever failed, the file cannot be used
        # torch's own message advises retrying with weights_only=False, which would run whatever the file holds:
        # it is neither shown nor chained.
        why = (
            "it holds objects other than tensors and plain values, which are never unpickled"
            if isinstance(error, pickle.UnpicklingError)
            else f"it is corrupt or truncated ({type(error).__name__})"
        )
        raise CheckpointError(f"checkpoint {path} is not trusted: {why}: delete it to train this point again from"
                              " its start") from None  # fmt: skip


def check_run_checkpoint(path: Path) -> None:
    """CheckpointError unless ``path`` is absent or a run checkpoint that :func:`restore_run_state` can load; maps
    rather than reads the tensors, so checking before a run starts costs little even for a large model."""
    _run_state(path, load_checkpoint(path, torch.device("cpu"), mmap=True))


def _run_state(path: Path, state: Any) -> dict[str, Any] | None:
    """``state`` when it is a run's checkpoint (or None); CheckpointError naming what it lacks otherwise."""
    if state is None:
        return None
    missing = [key for key in RUN_STATE_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} is not a run's checkpoint (no {', '.join(missing)}): delete it to"
                              " train this point again from its start")  # fmt: skip
    return state


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


def save_run_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, progress: dict, *,
                   write: bool = True) -> None:  # fmt: skip
    """Checkpoint a run: weights, optimizer, RNG, and its progress (plain values). Every rank of a distributed run
    calls it (gathering sharded state takes them all); only the one with ``write`` (rank 0) writes the file."""
    model_state, optimizer_state = full_state(model, optimizer)
    if write:
        state = {"model": model_state, "optimizer": optimizer_state, "rng": rng_state()}
        save_checkpoint(path, {**state, "progress": progress})


def restore_run_state(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> dict[str, Any] | None:
    """Load a run's checkpoint into ``model`` and ``optimizer``, restore the RNG; its progress, or None if absent."""
    state = _run_state(path, load_checkpoint(path, device))
    if state is None:
        return None
    load_full_state(model, optimizer, state["model"], state["optimizer"])
    set_rng_state(state["rng"])
    return state["progress"]
