"""Sweeps through a real SLURM cluster (launcher=slurm, hydra-submitit-launcher), end to end.

Needs a cluster with an idle node in partition ``debug``: ``bash scripts/slurm_single_node.sh`` starts one on this
machine (root, Debian; scripts/test.sh runs it before pytest). Elsewhere these tests skip, saying why.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scaling_lab.results import load_records
from tests.train.test_distributed import TWENTY_STEPS, assert_same_curve

pytestmark = pytest.mark.slurm

START_HINT = "start a single-node cluster with `bash scripts/slurm_single_node.sh` (as root, Debian)"
# What one array task asks for: 1 CPU (so 1 torch thread: configs/launcher/slurm.yaml), 2 GB (a tiny sl-train job
# peaks well under 1 GB), the partition the script creates.
FITS_THIS_NODE = ("hydra.launcher.partition=debug", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2",
                  "hydra.launcher.timeout_min=10")  # fmt: skip


def _why_no_cluster() -> str | None:
    """None when partition ``debug`` has a node that takes jobs now, else the reason to skip."""
    if shutil.which("sinfo") is None:
        return f"no SLURM client (sinfo not found): {START_HINT}"
    try:
        sinfo = subprocess.run(["sinfo", "--noheader", "--partition=debug", "--format=%t"],
                               capture_output=True, text=True, timeout=20, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"SLURM does not answer (sinfo timed out after 20 s): {START_HINT}"
    states = sinfo.stdout.split()
    if sinfo.returncode != 0 or not {"idle", "mix"} & set(states):
        return f"no idle node in SLURM partition debug (sinfo: {(sinfo.stdout + sinfo.stderr).strip()!r}): {START_HINT}"
    return None


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster() -> None:
    """Skip without a cluster; but fail where scripts/test.sh started one (SCALING_LAB_REQUIRE_SLURM=1), so that CI
    never passes by skipping these tests."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason='needs pip install -e ".[slurm]"')
    if (reason := _why_no_cluster()) is not None:
        if os.environ.get("SCALING_LAB_REQUIRE_SLURM") == "1":
            pytest.fail(f"SCALING_LAB_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)


def _job_ids(multirun: Path) -> list[str]:
    """SLURM ids of the jobs submitit submitted (``<array job>_<task>``, or ``<job>`` for a sweep of one point):
    each has a folder of that name holding its pickled call."""
    return sorted(p.parent.name for p in (multirun / ".submitit").glob("*/*_submitted.pkl"))


@contextlib.contextmanager
def _cancel_on_failure(multirun: Path):
    """Cancel whatever the test submitted if it fails: a failed test must not leave jobs on the cluster."""
    try:
        yield
    except BaseException:
        for job in _job_ids(multirun):
            subprocess.run(["scancel", job], capture_output=True, check=False, timeout=20)
        raise


def test_tiny_sweep_through_slurm(tmp_path, tiny_sweep, collect_tiny_sweep):
    command = tiny_sweep("slurm", *FITS_THIS_NODE, grid=("model=n1k,n3k", "budget.value=20480"))
    with _cancel_on_failure(tmp_path / "multirun"):
        run = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False, timeout=240)
        assert run.returncode == 0, run.stderr[-3000:]

    table, curves = collect_tiny_sweep()
    assert len(table) == 2 and table.run_id.is_unique and table.n_params_total.nunique() == 2
    assert (table.status == "finished").all() and (table.n_tokens == 20480).all()
    assert table.loss.between(0.5, 6.0).all() and set(curves.run_id) == set(table.run_id)
    # Each point trained once, inside a SLURM array task (its log), and has one record.
    tasks = _job_ids(tmp_path / "multirun")
    assert len(tasks) == 2, tasks
    logs = "".join(p.read_text() for p in (tmp_path / "multirun" / ".submitit").glob("*/*_log.out"))
    for run_id in table.run_id:
        assert logs.count(f"finished tiny/{run_id}:") == 1, logs[-3000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "tiny").glob("*/run.json")]
    assert len(records) == 2
    assert all(r["config"]["threads"] == 1 for r in records)  # SLURM_CPUS_PER_TASK, resolved inside the job


# One grid point trained by one SLURM job of 2 tasks (srun starts both; they meet as ranks 0 and 1 of one run): the
# 20 steps of tests/train/test_distributed.py, whose 2-process losses equal the 1-process run's.
TWO_TASKS = ("hydra.launcher.tasks_per_node=2",)
TWENTY_STEP_POINT = tuple(o for o in TWENTY_STEPS if o.split("=", 1)[0] not in {"model", "budget.value", "threads"})
TWENTY_STEP_GRID = ("model=n1k", "budget.value=5120")


def test_two_slurm_tasks_train_one_run_as_one_process_does(tmp_path, tiny_sweep):
    command = tiny_sweep("slurm", *FITS_THIS_NODE, *TWO_TASKS, *TWENTY_STEP_POINT, grid=TWENTY_STEP_GRID)
    with _cancel_on_failure(tmp_path / "multirun"):
        run = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False, timeout=240)
        assert run.returncode == 0, run.stderr[-3000:]
    alone = tiny_sweep("sequential", *TWENTY_STEP_POINT, "threads=1", f"paths.results_dir={tmp_path / 'alone'}",
                       f"hydra.sweep.dir={tmp_path / 'alone-multirun'}", grid=TWENTY_STEP_GRID)  # fmt: skip
    run_alone = subprocess.run(alone, capture_output=True, text=True, cwd=tmp_path, check=False, timeout=240)
    assert run_alone.returncode == 0, run_alone.stderr[-3000:]

    (record,), (reference,) = load_records(tmp_path / "results"), load_records(tmp_path / "alone")
    assert record.world_size == 2 and reference.world_size == 1
    assert record.status == "finished" and record.n_tokens == reference.n_tokens == 5120
    assert record.config["threads"] == 1  # each task's SLURM_CPUS_PER_TASK
    assert_same_curve(record, reference)
    assert not list((tmp_path / "results").rglob("checkpoint.pt"))
    # One job of two tasks (one log each); the point trained once: rank 0 alone prints its end.
    (job,) = _job_ids(tmp_path / "multirun")
    logs = sorted((tmp_path / "multirun" / ".submitit" / job).glob("*_log.out"))
    assert [p.name for p in logs] == [f"{job}_0_log.out", f"{job}_1_log.out"]
    assert "".join(p.read_text() for p in logs).count(f"finished tiny/{record.run_id}:") == 1
    assert f"finished tiny/{record.run_id}:" in logs[0].read_text()


def test_a_batch_that_does_not_split_over_the_slurm_tasks_is_refused_before_submitting(tmp_path, tiny_sweep):
    """3 sequences per step over 2 tasks: refused by sl-train on the submitting host (inside the job, the error would
    reach only the job's log), with one error line and exit 2; nothing is submitted or created."""
    command = tiny_sweep("slurm", *FITS_THIS_NODE, *TWO_TASKS, *TWENTY_STEP_POINT, "optim.batch_tokens=96",
                         grid=("model=n1k", "budget.value=5760"))  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False, timeout=120)
    assert run.returncode == 2, run.stderr[-3000:]
    assert run.stderr.count("error:") == 1 and run.stderr.startswith("error: ")
    assert "optim.batch_tokens gives 3 sequences per step, which do not split evenly over 2 processes" in run.stderr
    assert not (tmp_path / "multirun").exists() and not (tmp_path / "results").exists()


def test_a_start_refused_inside_a_slurm_job_says_why_on_the_submitting_terminal(tmp_path, tiny_sweep):
    """device=cuda: the submitting host cannot know the node's GPUs, so the job itself refuses (this node has none).
    Its 'failed:' line reaches the job's log only; sl-train repeats it before its summary, then removes what the
    refused sweep created, the job logs included."""
    command = tiny_sweep("slurm", *FITS_THIS_NODE, "device=cuda", grid=("model=n1k", "budget.value=20480"))
    with _cancel_on_failure(tmp_path / "multirun"):
        run = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False, timeout=240)
    assert run.returncode == 1, run.stderr[-3000:]
    # (submitit's own warnings about this test cluster's missing accounting may come before)
    lines = [line for line in run.stderr.splitlines() if line.startswith(("failed:", "error:"))]
    assert len(lines) == 2, run.stderr[-3000:]
    assert lines[0].startswith("failed: grid point #0: device=cuda is not available"), lines[0]
    assert lines[1].startswith("error: 1 of 1 grid points failed") and "nothing was left behind" in lines[1]
    assert not (tmp_path / "multirun").exists() and not list((tmp_path / "results").rglob("*"))


def test_requeued_job_resumes_from_its_checkpoint(tmp_path, tiny_sweep):
    # One point of 2000 steps, checkpointing every 20: the requeue comes as soon as the first checkpoint is seen, and
    # the job ignores SIGTERM (as submitit does) until SIGKILL, KillWait=2 s later; SIGKILL was seen up to 4.5 s after
    # the requeue. The job must still be running then, whatever the machine's speed: n25k trained at 1.2e5 tokens/s
    # on one idle thread here (20-50k under load), so 2000 steps of 1024 tokens leave ≥ 17 s after the first
    # checkpoint. (500 steps finished before the SIGKILL on an idle machine.)
    command = tiny_sweep("slurm", *FITS_THIS_NODE, "debug.progress=true", "checkpoint_every_tokens=20480",
                         grid=("model=n25k", "budget.value=2048000"))  # fmt: skip
    multirun, results = tmp_path / "multirun", tmp_path / "results" / "tiny"
    with _sweeping(command, tmp_path) as sweep:
        job = _job_at_its_first_checkpoint(sweep, tmp_path)
        _scontrol("requeue", job)
        assert sweep.wait(timeout=900) == 0, _tail(tmp_path / "sl-train.out")

    shown = _scontrol("show", "job", job)
    assert "Restarts=1" in shown, shown  # SLURM ran the task twice
    (record_file,) = results.glob("*/run.json")  # recorded once
    record = json.loads(record_file.read_text())
    assert record["status"] == "finished" and record["n_tokens"] == 2048000
    assert not (record_file.parent / "checkpoint.pt").exists()
    log_out = (multirun / ".submitit" / job / f"{job}_0_log.out").read_text()
    assert log_out.count(f"finished tiny/{record['run_id']}:") == 1, log_out[-3000:]
    # The second segment resumed from the checkpoint, not from step 0 (the first segment's lines are in the log too:
    # submitit asks the cluster to append on a requeue, --open-mode=append).
    resumes = re.findall(rf"resume tiny/{re.escape(record['run_id'])} from step (\d+) of (\d+)", log_out)
    assert len(resumes) == 1 and 0 < int(resumes[0][0]) < int(resumes[0][1]), log_out[-3000:]


def test_requeued_two_task_job_resumes_to_the_uninterrupted_losses(tmp_path, tiny_sweep):
    """1000 steps of n1k on 2 tasks, a checkpoint every 100 steps. At the first checkpoint the job is suspended (SLURM
    stops its processes: it trains no further, whatever the machine's speed) and requeued held; released, it starts
    on 2 new tasks that resume from that checkpoint. Its curve must equal the uninterrupted run of 2 processes
    (torchrun: the same ranks and batch slices as 2 SLURM tasks, to the last bit here). Not the 1-process run: over
    1000 steps at this learning rate float rounding grows to ~0.05 in the loss between 1 and 2 processes."""
    point = (*(o for o in TWENTY_STEP_POINT if not o.startswith("eval_every_tokens=")),
             "eval_every_tokens=12800", "checkpoint_every_tokens=25600")  # fmt: skip
    grid = ("model=n1k", "budget.value=256000")
    multirun, results = tmp_path / "multirun", tmp_path / "results" / "tiny"
    with _sweeping(tiny_sweep("slurm", *FITS_THIS_NODE, *TWO_TASKS, *point, grid=grid), tmp_path) as sweep:
        job = _job_at_its_first_checkpoint(sweep, tmp_path)
        _scontrol("suspend", job)
        _scontrol("requeuehold", job)
        (record_file,) = results.glob("*/run.json")
        assert json.loads(record_file.read_text())["status"] == "running"  # what the requeued job finds
        # The uninterrupted reference, while the held job leaves the CPUs free.
        uninterrupted = tiny_sweep("sequential", *point, "threads=1", f"paths.results_dir={tmp_path / 'uninterrupted'}",
                                   f"hydra.sweep.dir={tmp_path / 'uninterrupted-multirun'}", grid=grid)  # fmt: skip
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
        environ = {**os.environ, "OMP_NUM_THREADS": "1"}
        reference_run = subprocess.run([*torchrun, *uninterrupted[1:]], capture_output=True, text=True, cwd=tmp_path,
                                       env=environ, check=False, timeout=240)  # fmt: skip
        assert reference_run.returncode == 0, reference_run.stderr[-3000:]
        _scontrol("release", job)
        assert sweep.wait(timeout=240) == 0, _tail(tmp_path / "sl-train.out")

    assert "Restarts=1" in (shown := _scontrol("show", "job", job)), shown  # SLURM started the job twice
    (record,), (reference,) = load_records(results), load_records(tmp_path / "uninterrupted")
    assert record.status == "finished" and record.world_size == reference.world_size == 2
    assert_same_curve(record, reference)
    assert not (record_file.parent / "checkpoint.pt").exists()
    logs = "".join(p.read_text() for p in (multirun / ".submitit" / job).glob("*_log.out"))
    assert logs.count(f"finished tiny/{record.run_id}:") == 1, logs[-3000:]
    resumes = re.findall(rf"resume tiny/{re.escape(record.run_id)} from step (\d+) of 1000", logs)
    assert len(resumes) == 1 and 0 < int(resumes[0]) < 1000, logs[-3000:]


@contextlib.contextmanager
def _sweeping(command: list[str], tmp_path: Path):
    """The sweep ``command`` running in the background (output in tmp_path/sl-train.out), killed if still running
    when the block ends; what it submitted is cancelled if the block fails."""
    with (tmp_path / "sl-train.out").open("w") as out:
        sweep = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    with _cancel_on_failure(tmp_path / "multirun"):
        try:
            yield sweep
        finally:
            if sweep.poll() is None:
                sweep.kill()


def _job_at_its_first_checkpoint(sweep: subprocess.Popen, tmp_path: Path) -> str:
    """The SLURM id of the sweep's one job, once its run's first checkpoint is on disk (observed; 120 s at most)."""
    deadline = time.monotonic() + 120
    while not list((tmp_path / "results" / "tiny").glob("*/checkpoint.pt")):
        assert sweep.poll() is None, f"sl-train ended before a checkpoint:\n{_tail(tmp_path / 'sl-train.out')}"
        assert time.monotonic() < deadline, f"no checkpoint after 120 s:\n{_tail(tmp_path / 'sl-train.out')}"
        time.sleep(0.05)
    (job,) = _job_ids(tmp_path / "multirun")
    return job


def _scontrol(*arguments: str) -> str:
    return subprocess.run(["scontrol", *arguments], check=True, capture_output=True, text=True, timeout=20).stdout


def _tail(path: Path, characters: int = 3000) -> str:
    return path.read_text()[-characters:]
