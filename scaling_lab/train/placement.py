"""Where one grid point runs when several run side by side: its accelerator, its share of it, and its CPU threads.

The local-parallel launcher (hydra-joblib-launcher, `configs/launcher/local.yaml`) runs ``n_jobs`` grid points at
once in worker processes. Each job then

* claims a *share* of one GPU with file locks: ``jobs_per_device=k`` makes every job a 1/k share (k jobs per GPU,
  1 → never two on one GPU; ``submitit_local`` would hand every job GPU 0), and
  ``jobs_per_device=auto`` makes a job's share 1/k for the k copies of *this* run that fit the device
  (:func:`jobs_that_fit`). A device takes jobs while the sum of their shares stays ≤ 1, so a sweep of mixed sizes
  needs no agreement between its jobs: eight 1M runs fill an 80 GB GPU, a 300M run holds one alone, and four 1M
  runs can sit beside two runs that fit only twice.
* takes ``cpu_count // n_jobs`` CPU threads, because several torch processes on few cores oversubscribe threads
  (one run was measured 10× slower on 2 cores with two jobs at default thread counts).

Several processes per GPU, one run per process, so a packed run computes exactly what it would alone. Under NVIDIA
MPS (``nvidia-cuda-mps-control -d``) their kernels overlap on the GPU; without it the GPU time-slices between
processes, which still fills the gaps a small model leaves while its process launches kernels.

Locks live in a directory shared by every launch on the host, so two sweeps launched at once on one box still
respect each other's shares. A crashed job releases its lock with its process (``flock`` semantics). A large job
waits while small ones hold parts of every device; it gets a device once they finish (jobs are never preempted).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from scaling_lab.cores import usable_cores
from scaling_lab.errors import ConfigError
from scaling_lab.model.hardware import training_memory_bytes

# The most runs that share one GPU under jobs_per_device=auto. The packing target is ≥ 4× aggregate throughput
# from ≤ 10M-parameter models, measured at k = 1, 2, 4, 8 (scripts/bench_gpu.py); past 8 processes the host's
# cores and the per-process CUDA context (hardware.PROCESS_OVERHEAD_BYTES) cost more than the GPU gives back.
MAX_JOBS_PER_DEVICE = 8
# Runs above this many parameters (total N) get a GPU to themselves under auto: packing targets models of ≤ 10M
# parameters; 12M admits the n10m preset (10.6M non-embedding, 10.8M total at the byte vocabulary). Larger models
# keep a GPU busy on their own; scripts/bench_gpu.py measures where packing stops paying on a given GPU.
PACK_MAX_PARAMS = 12_000_000
# Share of device memory that packed runs may plan to use: 10 % stays free for allocator fragmentation and for
# what the estimate leaves out (torch.compile's workspaces, eval batches).
DEVICE_MEMORY_FRACTION = 0.9
# Default pipe directory of the MPS control daemon (NVIDIA Multi-Process Service docs, CUDA_MPS_PIPE_DIRECTORY).
MPS_DEFAULT_PIPE_DIRECTORY = "/tmp/nvidia-mps"


def cpu_threads_per_job(jobs_at_once: int, cpu_count: int | None = None) -> int:
    """CPU threads for one of ``jobs_at_once`` jobs sharing this process's usable cores (at least 1)."""
    cores = cpu_count if cpu_count is not None else usable_cores()
    if jobs_at_once < 1:
        raise ValueError(f"jobs_at_once must be ≥ 1, got {jobs_at_once}")
    return max(1, cores // jobs_at_once)


# ---- The auto rule: how many copies of one run fit a device (pure) ---------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Footprint:
    """What the packing rule needs to know about one run, all known before it starts."""

    n_params: int
    """Total parameters (N)."""
    memory_bytes: int
    """Estimated peak device memory of one process of the run (``hardware.training_memory_bytes``)."""


def footprint_of(plan: Any, *, world_size: int = 1, sharded: bool = False) -> Footprint:
    """The footprint of a ``train.plan.TrainPlan`` (its shape, vocabulary, N and micro-batch) in one of the
    ``world_size`` processes that train it, its model ``sharded`` by FSDP2 or not (``hardware.shards_parameters``)."""
    tokens = plan.micro_batch_sequences * plan.sequence_length
    memory = training_memory_bytes(plan.shape, vocab_size=plan.vocab_size, n_params=plan.n_params_total,
                                   micro_batch_tokens=tokens, world_size=world_size, sharded=sharded)  # fmt: skip
    return Footprint(n_params=plan.n_params_total, memory_bytes=memory)


def jobs_that_fit(footprint: Footprint, *, device_memory_bytes: int, cpu_cores_per_device: int) -> int:
    """How many copies of a run share one device under ``jobs_per_device=auto``.

    1 above :data:`PACK_MAX_PARAMS`; otherwise as many as fit in :data:`DEVICE_MEMORY_FRACTION` of the device's
    memory, at most one per CPU core of the device's share of the host (each process needs a core to launch its
    kernels) and at most :data:`MAX_JOBS_PER_DEVICE`; never below 1.
    """
    if footprint.n_params > PACK_MAX_PARAMS:
        return 1
    by_memory = int(DEVICE_MEMORY_FRACTION * device_memory_bytes // footprint.memory_bytes)
    return max(1, min(by_memory, cpu_cores_per_device, MAX_JOBS_PER_DEVICE))


def pick_device(loads: Sequence[Fraction], shares: Sequence[Fraction]) -> int | None:
    """The device for a job whose share is ``shares[d]`` on device d, given each device's held ``loads``: the
    least-loaded device it fits on (ties → lowest index, so jobs spread over devices before doubling up), or None
    when it fits nowhere yet."""
    fitting = [(load, device) for device, (load, share) in enumerate(zip(loads, shares, strict=True))
               if load + share <= 1]  # fmt: skip
    return min(fitting)[1] if fitting else None


def free_slot(of: int, held: set[int]) -> int:
    """The lowest slot number in range(``of``) not in ``held`` (a device with room for a 1/of share has one)."""
    return min(set(range(of)) - held)


# ---- Claiming a share with file locks ------------------------------------------------------------------------------

# device{d}.of{k}.slot{s}.lock held = a 1/k share of device d. Lock files are never deleted (waiters must share one
# inode); an unheld file is simply free.
SLOT_FILE = re.compile(r"device(\d+)\.of(\d+)\.slot(\d+)\.lock")
GUARD_NAME = "claims.lock"  # serialises claims: reading the loads and taking a slot happen as one step


def held_slots(lock_dir: Path) -> list[tuple[int, int, int]]:
    """(device, of, slot) of every slot file some process holds now (probed with a non-blocking acquire)."""
    held = []
    for path in sorted(lock_dir.glob("device*.of*.slot*.lock")):
        match = SLOT_FILE.fullmatch(path.name)
        if match is None:
            continue
        probe = FileLock(str(path))
        try:
            probe.acquire(timeout=0)
        except Timeout:
            held.append(tuple(int(group) for group in match.groups()))
        else:
            probe.release()
    return held


def device_loads(held: Sequence[tuple[int, int, int]], n_devices: int) -> list[Fraction]:
    """Sum of the held shares (1/of) per device."""
    loads = [Fraction(0)] * n_devices
    for device, of, _ in held:
        if device < n_devices:
            loads[device] += Fraction(1, of)
    return loads


@contextmanager
def claim_device_slot(
    lock_dir: Path, n_devices: int, *, jobs_per_device: int | Sequence[int] = 1, poll_seconds: float = 0.5
) -> Iterator[int]:
    """Hold a 1/k share of one of ``n_devices`` devices; yield that device's index.

    ``jobs_per_device`` is k, the same on every device or one per device (``auto``: how many copies of this run fit
    each). Blocks (polling) until some device has room; among those, takes the least loaded.
    """
    per_device = [jobs_per_device] * n_devices if isinstance(jobs_per_device, int) else list(jobs_per_device)
    if n_devices < 1 or len(per_device) != n_devices or min(per_device) < 1:
        raise ValueError(f"need n_devices ≥ 1 and jobs_per_device ≥ 1 for each, got {n_devices}, {jobs_per_device}")
    lock_dir.mkdir(parents=True, exist_ok=True)
    shares = [Fraction(1, k) for k in per_device]
    while True:
        with FileLock(str(lock_dir / GUARD_NAME)):
            held = held_slots(lock_dir)
            device = pick_device(device_loads(held, n_devices), shares)
            if device is not None:
                of = per_device[device]
                taken = {slot for d, k, slot in held if d == device and k == of}
                lock = FileLock(str(lock_dir / f"device{device}.of{of}.slot{free_slot(of, taken)}.lock"))
                lock.acquire(timeout=0)  # free: every claim holds the guard, and it was just probed unheld
        if device is not None:
            break
        time.sleep(poll_seconds)
    try:
        yield device
    finally:
        lock.release()


# Host-local on purpose: a results directory on a shared file system would make jobs on different nodes share slots.
DEVICE_SLOT_DIR = Path(tempfile.gettempdir()) / "scaling_lab_device_slots"


def mps_active(environ: dict[str, str] | None = None) -> bool:
    """Whether an NVIDIA MPS control daemon serves this host: its ``control`` pipe exists in the pipe directory
    (``CUDA_MPS_PIPE_DIRECTORY``, else the default). Packed runs' kernels then overlap instead of time-slicing."""
    environ = os.environ if environ is None else environ
    return (Path(environ.get("CUDA_MPS_PIPE_DIRECTORY") or MPS_DEFAULT_PIPE_DIRECTORY) / "control").exists()


def jobs_per_cuda_device(jobs_per_device: int | str, footprint: Footprint | None) -> list[int]:
    """k for each visible CUDA device: ``jobs_per_device`` itself, or for ``auto`` :func:`jobs_that_fit` of the
    run's footprint against each device's memory and its share of the host's cores."""
    import torch

    n_devices = torch.cuda.device_count()
    if jobs_per_device != "auto":
        return [int(jobs_per_device)] * n_devices
    if footprint is None:
        warnings.warn("jobs_per_device=auto without the run's footprint: placing one run per GPU", stacklevel=3)
        return [1] * n_devices
    cores = max(1, usable_cores() // n_devices)
    return [jobs_that_fit(footprint, device_memory_bytes=torch.cuda.get_device_properties(i).total_memory,
                          cpu_cores_per_device=cores) for i in range(n_devices)]  # fmt: skip


def check_device_available(requested: str) -> None:
    """ConfigError unless the ``device`` setting names a device this machine has (auto and cpu always exist)."""
    import torch

    kind, _, index = requested.partition(":")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            why = "this torch is built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ConfigError(f"device={requested} is not available ({why}): use device=cpu, or device=auto"
                              " (a GPU when there is one)")  # fmt: skip
        if index and int(index) >= count:
            raise ConfigError(f"device={requested} is not available: this machine has {count} CUDA device(s),"
                              f" cuda:0 to cuda:{count - 1}: use one of them, or device=cuda")  # fmt: skip
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={requested} is not available (no Apple GPU, or this torch is built without MPS):"
                          " use device=cpu, or device=auto")  # fmt: skip


def memory_bytes(requested: str) -> tuple[int | None, str]:
    """The memory a run on the ``device`` setting can use at most (None where the platform does not say), and the
    device's name for messages.

    CUDA: the device's total memory (with a bare ``cuda``, the largest visible device: placement may pick any).
    CPU and MPS (unified memory): the host's physical memory, or the cgroup's limit (a container, a SLURM job) when
    that is lower."""
    import torch

    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        indices = [int(requested[5:])] if ":" in requested else range(torch.cuda.device_count())
        sizes = {torch.cuda.get_device_properties(i).total_memory: f"cuda:{i}" for i in indices}
        return max(sizes), sizes[max(sizes)]
    where = "this machine's memory" if requested == "cpu" else f"{requested} (this machine's memory)"
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or no such name
        return None, where
    try:  # cgroup v2; "max" (no limit) or an absent file keep the host's memory
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        total = min(total, int(limit)) if limit.isdigit() else total
    except OSError:
        pass
    return total, where


@contextmanager
def placed_device(
    requested: str, *, jobs_at_once: int = 1, jobs_per_device: int | str = 1, footprint: Footprint | None = None
) -> Iterator[object]:
    """The torch device this job trains on: a claimed GPU share when a parallel launcher runs several jobs on a
    CUDA host (``jobs_at_once`` > 1, as the launcher says) and ``requested`` names no index; otherwise exactly what
    was requested (auto → cuda or cpu).

    ``footprint`` (from :func:`footprint_of`) is what ``jobs_per_device=auto`` sizes the share by."""
    import torch

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if requested == "auto" else requested)
    if device.type != "cuda" or device.index is not None or jobs_at_once == 1:
        yield device
        return
    per_device = jobs_per_cuda_device(jobs_per_device, footprint)
    with claim_device_slot(DEVICE_SLOT_DIR, len(per_device), jobs_per_device=per_device) as index:
        if per_device[index] > 1:
            overlap = "MPS on: kernels overlap" if mps_active() else "no MPS: the GPU time-slices between them"
            print(f"placement: cuda:{index} shared by up to {per_device[index]} runs like this one ({overlap})")
        yield torch.device("cuda", index)
