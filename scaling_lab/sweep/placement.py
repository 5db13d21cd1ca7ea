"""Where one grid point runs when several run side by side: its accelerator and its CPU threads.

The local-parallel launcher (hydra-joblib-launcher, `configs/launcher/local.yaml`) runs ``n_jobs`` grid points at
once in worker processes. Each job then

* claims one GPU *slot* with a file lock, so a box with G GPUs runs one job per GPU and never two on one GPU
  unless ``jobs_per_device > 1`` is asked for (``submitit_local`` would hand every job GPU 0: shared/DESIGN.md);
* takes ``cpu_count // n_jobs`` CPU threads, because several torch processes on few cores oversubscribe threads
  (one run was measured 10× slower on 2 cores with two jobs at default thread counts).

Locks live in a directory shared by every launch on the host, so two sweeps launched at once on one box still
never put two jobs on one GPU. A crashed job releases its lock with its process (``flock`` semantics).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout


def cpu_threads_per_job(jobs_at_once: int, cpu_count: int | None = None) -> int:
    """CPU threads for one of ``jobs_at_once`` jobs sharing this host's cores (at least 1)."""
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    if jobs_at_once < 1:
        raise ValueError(f"jobs_at_once must be ≥ 1, got {jobs_at_once}")
    return max(1, cores // jobs_at_once)


def jobs_at_once_from_hydra() -> int:
    """How many jobs the active Hydra launcher runs at once on this host (1 outside a parallel launcher)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return 1
    launcher = HydraConfig.get().launcher
    n_jobs = launcher.get("n_jobs") if hasattr(launcher, "get") else None
    if n_jobs is None:
        return 1
    n_jobs = int(n_jobs)
    return os.cpu_count() or 1 if n_jobs == -1 else max(1, n_jobs)  # joblib: -1 means one job per core


@contextmanager
def claim_device_slot(
    lock_dir: Path, n_devices: int, *, jobs_per_device: int = 1, poll_seconds: float = 0.5
) -> Iterator[int]:
    """Hold one of ``n_devices × jobs_per_device`` slots; yield the device index it belongs to.

    Blocks (polling) until a slot is free. Slots fill device by device in round-robin order of the slot number,
    so with ``jobs_per_device=2`` on 4 devices the first four jobs land on four different devices.
    """
    if n_devices < 1 or jobs_per_device < 1:
        raise ValueError(f"need n_devices ≥ 1 and jobs_per_device ≥ 1, got {n_devices}, {jobs_per_device}")
    lock_dir.mkdir(parents=True, exist_ok=True)
    slots = [(slot // n_devices, slot % n_devices) for slot in range(n_devices * jobs_per_device)]
    while True:
        for share, device in slots:
            lock = FileLock(str(lock_dir / f"device{device}.slot{share}.lock"))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            try:
                yield device
            finally:
                lock.release()
            return
        time.sleep(poll_seconds)


# Host-local on purpose: a results directory on a shared file system would make jobs on different nodes share slots.
DEVICE_SLOT_DIR = Path(tempfile.gettempdir()) / "scaling_lab_device_slots"


@contextmanager
def placed_device(requested: str, *, jobs_per_device: int = 1) -> Iterator[object]:
    """The torch device this job trains on: a claimed GPU slot when a parallel launcher runs several jobs on a
    multi-GPU host and ``requested`` names no index; otherwise exactly what was requested (auto → cuda or cpu)."""
    import torch

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if requested == "auto" else requested)
    if device.type != "cuda" or device.index is not None or jobs_at_once_from_hydra() == 1:
        yield device
        return
    with claim_device_slot(DEVICE_SLOT_DIR, torch.cuda.device_count(), jobs_per_device=jobs_per_device) as index:
        yield torch.device("cuda", index)
