import multiprocessing as mp
import time
from pathlib import Path

import pytest

from scaling_lab.sweep.placement import claim_device_slot, cpu_threads_per_job


@pytest.mark.parametrize(
    ("jobs", "cores", "threads"), [(1, 2, 2), (2, 2, 1), (3, 2, 1), (4, 16, 4), (3, 16, 5)]
)
def test_threads_are_divided_between_jobs(jobs, cores, threads):
    assert cpu_threads_per_job(jobs, cores) == threads


def _hold_slot(job: int, lock_dir: str, n_devices: int, jobs_per_device: int, hold: float, queue) -> None:
    with claim_device_slot(Path(lock_dir), n_devices, jobs_per_device=jobs_per_device, poll_seconds=0.05) as d:
        start = time.monotonic()
        time.sleep(hold)
        queue.put((job, d, start, time.monotonic()))


def _run_jobs(tmp_path, n_jobs, n_devices, jobs_per_device, hold=0.6):
    """Run n_jobs processes that each hold a slot for `hold` s; return (job, device, start, end) per job."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_hold_slot, args=(job, str(tmp_path), n_devices, jobs_per_device, hold, queue))
        for job in range(n_jobs)
    ]
    for p in procs:
        p.start()
    spans = [queue.get(timeout=60) for _ in range(n_jobs)]
    for p in procs:
        p.join(timeout=60)
    return spans


def test_one_job_per_device_never_two(tmp_path):
    spans = _run_jobs(tmp_path, n_jobs=4, n_devices=2, jobs_per_device=1)
    assert {device for _, device, _, _ in spans} == {0, 1}
    for device in (0, 1):
        held = sorted((start, end) for _, d, start, end in spans if d == device)
        assert len(held) == 2
        assert held[0][1] <= held[1][0], f"two jobs held device {device} at the same time: {held}"


def test_two_jobs_per_device_when_asked_spread_across_devices_first(tmp_path):
    spans = _run_jobs(tmp_path, n_jobs=2, n_devices=2, jobs_per_device=2, hold=0.3)
    assert {device for _, device, _, _ in spans} == {0, 1}


def test_placed_device_outside_a_parallel_launcher_is_what_was_asked():
    from scaling_lab.sweep.placement import placed_device

    with placed_device("cpu") as device:
        assert str(device) == "cpu"
