"""How many CPU cores this process may use: the one count behind sweep threads, preflight and bootstrap workers."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity (a SLURM task, ``taskset`` or a container gets fewer than the
    host has; ``os.cpu_count`` counts the host's, and workers sized by it oversubscribe the cores)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
