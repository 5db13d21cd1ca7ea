"""GPU placement: threads per job, the auto packing rule, share bookkeeping, and file-lock claims across processes."""

import multiprocessing as mp
import os
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from scaling_lab.config.schema import run_config_from_dict
from scaling_lab.cores import usable_cores
from scaling_lab.model import PRESETS, n_params_total
from scaling_lab.model.hardware import training_memory_bytes
from scaling_lab.train.placement import (
    MAX_JOBS_PER_DEVICE,
    PACK_MAX_PARAMS,
    Footprint,
    claim_device_slot,
    cpu_threads_per_job,
    device_loads,
    footprint_of,
    free_slot,
    held_slots,
    jobs_per_cuda_device,
    jobs_that_fit,
    mps_active,
    pick_device,
)
from scaling_lab.train.plan import make_plan


@pytest.mark.parametrize(("jobs", "cores", "threads"), [(1, 2, 2), (2, 2, 1), (3, 2, 1), (4, 16, 4), (3, 16, 5)])
def test_threads_are_divided_between_jobs(jobs, cores, threads):
    assert cpu_threads_per_job(jobs, cores) == threads


def test_placed_device_outside_a_parallel_launcher_is_what_was_asked():
    from scaling_lab.train.placement import placed_device

    with placed_device("cpu") as device:
        assert str(device) == "cpu"


# ---- the auto rule and the share bookkeeping (pure) ----------------------------------------------------------------


GB = 10**9


def test_footprint_of_a_real_plan() -> None:
    config = run_config_from_dict({
        "model": {"preset": "n1k"},
        "data": {"name": "embedded", "sources": [{"name": "prose", "kind": "embedded", "domain": "prose"}],
                 "sequence_length": 32},
        "optim": {"batch_tokens": 256, "micro_batch_sequences": 4},
        "budget": {"kind": "tokens", "value": 10_240},
        "logger": {"backend": "none"},
        "device": "cpu",
    })  # fmt: skip
    plan = make_plan(config, vocab_size=256)
    footprint = footprint_of(plan)
    assert footprint.n_params == plan.n_params_total == 4952
    tokens = plan.micro_batch_sequences * plan.sequence_length
    assert footprint.memory_bytes == training_memory_bytes(plan.shape, vocab_size=256, n_params=4952,
                                                           micro_batch_tokens=tokens)  # fmt: skip


@pytest.mark.parametrize(
    ("n_params", "memory", "device_memory", "cores", "jobs"),
    [
        (1_000_000, 2 * GB, 80 * GB, 16, 8),  # small: capped at MAX_JOBS_PER_DEVICE
        (1_000_000, 2 * GB, 80 * GB, 3, 3),  # one process per core of the device's share of the host
        (10_000_000, 20 * GB, 80 * GB, 16, 3),  # 72 GB usable / 20 GB
        (10_000_000, 80 * GB, 80 * GB, 16, 1),  # not even one fits: 1 (the run's own OOM says so)
        (PACK_MAX_PARAMS, 2 * GB, 80 * GB, 16, 8),  # at the size limit: still packed
        (PACK_MAX_PARAMS + 1, 2 * GB, 80 * GB, 16, 1),  # above it: a GPU to itself
        (85_000_000, 2 * GB, 141 * GB, 16, 1),
    ],
)
def test_jobs_that_fit(n_params, memory, device_memory, cores, jobs) -> None:
    footprint = Footprint(n_params=n_params, memory_bytes=memory)
    assert jobs_that_fit(footprint, device_memory_bytes=device_memory, cpu_cores_per_device=cores) == jobs


def _preset_footprint(preset: str, micro_batch_sequences: int = 8, context: int = 1024) -> Footprint:
    shape = PRESETS[preset]
    n = n_params_total(shape, 256, tied=False)
    memory = training_memory_bytes(
        shape, vocab_size=256, n_params=n, micro_batch_tokens=micro_batch_sequences * context
    )
    return Footprint(n_params=n, memory_bytes=memory)


@pytest.mark.parametrize(("preset", "h200", "a10"), [("n1m", 8, 8), ("n10m", 8, 7), ("n25m", 1, 1), ("n85m", 1, 1)])
def test_presets_pack_on_a_141_gb_h200_and_fewer_on_a_24_gb_a10(preset, h200, a10) -> None:
    # n10m on 8 × 1024 byte tokens: 18·10.82M + 206,336 B/token · 8192 + 1 GiB = 2.96 GB; 0.9 · 24 GB / 2.96 GB = 7.3
    footprint = _preset_footprint(preset)
    assert jobs_that_fit(footprint, device_memory_bytes=141 * GB, cpu_cores_per_device=16) == h200
    assert jobs_that_fit(footprint, device_memory_bytes=24 * GB, cpu_cores_per_device=16) == a10


F = Fraction


@pytest.mark.parametrize(
    ("loads", "shares", "device"),
    [
        ([F(0), F(0)], [F(1, 2), F(1, 2)], 0),  # empty: lowest index
        ([F(1, 2), F(0)], [F(1, 2), F(1, 2)], 1),  # spread before doubling up
        ([F(1, 2), F(1, 2)], [F(1, 2), F(1, 2)], 0),  # then double up
        ([F(1), F(1)], [F(1, 8), F(1, 8)], None),  # full
        ([F(1, 2), F(0)], [F(1), F(1)], 1),  # a whole-GPU job only where nothing runs
        ([F(1, 4), F(1, 4)], [F(1), F(1)], None),  # ... and waits while small ones hold every device
        ([F(3, 4), F(1, 4)], [F(1, 4), F(1, 2)], 1),  # shares differ per device (auto on unequal GPUs)
        ([F(3, 4), F(3, 4)], [F(1, 4), F(1, 2)], 0),
        ([F(2, 3), F(0)], [F(1, 3), F(1)], 1),  # least loaded, exact thirds
        ([F(2, 3)], [F(1, 3)], 0),  # 2/3 + 1/3 = 1 exactly: fits (no float rounding)
    ],
)
def test_pick_device(loads, shares, device) -> None:
    assert pick_device(loads, shares) == device


def test_loads_sum_the_shares_held_per_device() -> None:
    held = [(0, 2, 0), (0, 4, 1), (1, 1, 0), (0, 8, 3), (3, 2, 0)]  # device 3 is beyond this host's devices
    assert device_loads(held, 2) == [F(7, 8), F(1)]
    assert free_slot(4, {0, 1, 3}) == 2 and free_slot(1, set()) == 0


def test_held_slots_sees_only_held_slot_files(tmp_path) -> None:
    (tmp_path / "device0.of2.slot1.lock").touch()  # left by a finished job: free
    (tmp_path / "notes.lock").touch()
    with FileLock(str(tmp_path / "device1.of4.slot2.lock")):
        assert held_slots(tmp_path) == [(1, 4, 2)]
    assert held_slots(tmp_path) == []


def test_mps_is_seen_through_its_control_pipe(tmp_path) -> None:
    assert not mps_active({"CUDA_MPS_PIPE_DIRECTORY": str(tmp_path)})
    (tmp_path / "control").touch()
    assert mps_active({"CUDA_MPS_PIPE_DIRECTORY": str(tmp_path)})


# ---- slots and shares across real processes ----------------------------------------------------------------------
# No timing: every holder keeps its claim until the test releases it, and the test releases one only when no waiting
# job could fit beside those holding. So each claim is seen against exactly the claims held at that moment, and a
# job that fits but never gets in times the test out instead of passing by luck.


def _hold_until_released(job: int, lock_dir: str, n_devices: int, k: int, release, queue) -> None:
    with claim_device_slot(Path(lock_dir), n_devices, jobs_per_device=k, poll_seconds=0.02) as device:
        queue.put((job, device))
        release.wait(timeout=300)


def _admit_and_release(tmp_path, n_devices: int, ks: list[int]) -> list[tuple[int, int, dict[int, int]]]:
    """Start one process per share 1/k in ``ks``; for every claim, (job, device, {job: device} held right after it)."""
    ctx = mp.get_context("spawn")
    queue, releases = ctx.Queue(), [ctx.Event() for _ in ks]
    procs = [ctx.Process(target=_hold_until_released, args=(job, str(tmp_path), n_devices, k, releases[job], queue))
             for job, k in enumerate(ks)]  # fmt: skip
    for p in procs:
        p.start()
    waiting, held, claims = set(range(len(ks))), {}, []
    while waiting or held:
        loads = device_loads([(device, ks[job], 0) for job, device in held.items()], n_devices)
        if any(pick_device(loads, [F(1, ks[job])] * n_devices) is not None for job in waiting):
            job, device = queue.get(timeout=300)  # a job that fits gets in
            waiting.remove(job)
            held[job] = device
            claims.append((job, device, dict(held)))
        else:
            oldest = next(iter(held))
            releases[oldest].set()
            procs[oldest].join(timeout=60)  # its claim is released before anything else is decided
            del held[oldest]
    for p in procs:
        p.join(timeout=60)
    return claims


def test_one_job_per_device_never_two(tmp_path):
    claims = _admit_and_release(tmp_path, n_devices=2, ks=[1, 1, 1, 1])
    for _, _, held in claims:
        assert len(set(held.values())) == len(held), f"two jobs held one device at once: {held}"
    assert claims[1][2].keys() == {claims[0][0], claims[1][0]}  # the second claim came while the first held


def test_two_jobs_per_device_when_asked_spread_across_devices_first(tmp_path):
    claims = _admit_and_release(tmp_path, n_devices=2, ks=[2, 2])
    assert sorted(claims[-1][2].values()) == [0, 1]  # both held at once, one on each device


def test_four_quarter_shares_hold_one_device_at_once(tmp_path) -> None:
    claims = _admit_and_release(tmp_path, n_devices=1, ks=[4, 4, 4, 4])
    assert len(claims[-1][2]) == 4 and set(claims[-1][2].values()) == {0}


def test_mixed_shares_never_overfill_a_device(tmp_path) -> None:
    # one whole-GPU run, two half runs and four quarter runs on one device: at every claim the held shares sum ≤ 1
    ks = [1, 2, 2, 4, 4, 4, 4]
    claims = _admit_and_release(tmp_path, n_devices=1, ks=ks)
    assert len(claims) == len(ks)
    for _, _, held in claims:
        assert sum(F(1, ks[job]) for job in held) <= 1, f"shares of {held} held at once"
        assert 0 not in held or len(held) == 1, f"the whole-GPU run shared its device: {held}"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_packs_small_runs_on_this_gpu_and_gives_large_ones_a_gpu_each() -> None:
    n_devices = torch.cuda.device_count()
    if min(torch.cuda.get_device_properties(i).total_memory for i in range(n_devices)) < 16e9:
        pytest.skip("eight n1m runs (~1.6 GB each) need a GPU of 16 GB or more")
    assert jobs_per_cuda_device(3, None) == [3] * n_devices
    assert jobs_per_cuda_device("auto", _preset_footprint("n300m")) == [1] * n_devices
    small = jobs_per_cuda_device("auto", _preset_footprint("n1m"))
    cores = usable_cores() // n_devices
    assert all(k == min(MAX_JOBS_PER_DEVICE, cores) for k in small), small  # n1m needs ~1.6 GB: memory never binds


def test_usable_cores_follow_this_process_affinity() -> None:
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    before = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(before)})  # as a SLURM task with one CPU is pinned
        assert usable_cores() == 1 and cpu_threads_per_job(1) == 1
    finally:
        os.sched_setaffinity(0, before)
    assert usable_cores() == len(before)
