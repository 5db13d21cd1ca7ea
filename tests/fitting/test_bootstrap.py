"""The bootstrap's workers: how many run when the config says all cores."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from scaling_lab.fitting import bootstrap
from scaling_lab.fitting.bootstrap import BootstrapConfig


def worker_pid(table: pd.DataFrame) -> dict[str, float]:
    """A fit that reports the process it ran in (module level: joblib pickles it to the workers)."""
    return {"pid": float(os.getpid())}


def test_all_cores_means_the_cores_this_process_may_use() -> None:
    """Pinned to one core (as a one-CPU SLURM task or ``taskset -c 0`` is), n_jobs=-1 fits in this process
    instead of starting a worker per host core."""
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    table = pd.DataFrame({"n_params": [1.0, 2.0], "n_tokens": [3.0, 4.0], "loss": [5.0, 6.0]})
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(before)})
        samples = bootstrap.run(worker_pid, table, BootstrapConfig(n_resamples=4, n_jobs=-1), {}, resamples=[table] * 4)
    finally:
        os.sched_setaffinity(0, before)
    assert [sample["pid"] for sample in samples] == [float(os.getpid())] * 4
