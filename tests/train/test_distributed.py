"""One run across two CPU processes (gloo), launched as a user launches it: ``sl-train ... processes=2`` (sl-train
starts the ranks) and ``torchrun -m scaling_lab.cli.train`` (torchrun starts them).

The two processes must train exactly the one-process run with the same global batch (DDP, and FSDP2 forced by
``fsdp_min_params=0``), write one record that says ``world_size=2``, and resume after a crash to the uninterrupted
run's losses, with two processes or with one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scaling_lab.data import default_cache_dir
from scaling_lab.errors import ConfigError
from scaling_lab.results import RunRecord, load_records
from scaling_lab.train.distributed import (
    SINGLE,
    Ranks,
    check_batch_splits,
    check_processes,
    planned_ranks,
    ranks_from_environment,
)

# 20 optimizer steps of 8 sequences × 32 tokens, an eval (and a train-loss point) after every step
TWENTY_STEPS = (
    "model=n1k", "budget.value=5120", "data.sequence_length=32", "data.eval_bytes=1024", "optim.batch_tokens=256",
    "optim.lr=0.02", "eval_every_tokens=256", "threads=1", "device=cpu", "debug.progress=false", "logger=none",
)  # fmt: skip
TOLERANCE = 1e-5


def sl_train(results: Path, *overrides: str, processes: int = 1, torchrun: bool = False) -> subprocess.CompletedProcess:
    """The real sl-train in a subprocess: ``processes=K`` (sl-train starts the ranks), or ``torchrun`` starting them.
    The temporary folder is the test's own: whatever a launcher leaves there is seen."""
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"] if torchrun else []
    paths = (f"paths.results_dir={results}", f"paths.cache_dir={default_cache_dir()}")
    scratch = results.parent / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    environ = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "OMP_NUM_THREADS": "1",
               "TMPDIR": str(scratch)}  # fmt: skip
    count = () if torchrun or processes == 1 else (f"processes={processes}",)
    command = [sys.executable, *launcher, "-m", "scaling_lab.cli.train", *paths, *TWENTY_STEPS, *count, *overrides]
    return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=300, check=False)


def agent_files(scratch: Path) -> list[Path]:
    """What an elastic agent left in the temporary folder (torch's own compile cache, torchinductor_*, may stay)."""
    return [path for path in scratch.iterdir() if not path.name.startswith("torchinductor_")]


def the_record(results: Path) -> RunRecord:
    (record,) = load_records(results)
    return record


def trained(results: Path, *overrides: str, processes: int = 1, torchrun: bool = False) -> RunRecord:
    done = sl_train(results, *overrides, processes=processes, torchrun=torchrun)
    assert done.returncode == 0, done.stderr[-3000:]
    return the_record(results)


def assert_same_curve(record: RunRecord, reference: RunRecord) -> None:
    assert record.run_id == reference.run_id  # the number of processes is not part of a run's identity
    assert len(record.curve) == len(reference.curve) == 20
    assert [p.train_loss for p in record.curve] == pytest.approx([p.train_loss for p in reference.curve],
                                                                 abs=TOLERANCE)  # fmt: skip
    assert [p.loss for p in record.curve] == pytest.approx([p.loss for p in reference.curve], abs=TOLERANCE)
    assert record.final_loss == pytest.approx(reference.final_loss, abs=TOLERANCE)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> RunRecord:
    return trained(tmp_path_factory.mktemp("one") / "results")


@pytest.mark.parametrize(("sharding", "torchrun"), [("ddp", False), ("fsdp", True)])
def test_two_processes_train_the_one_process_run(one_process, tmp_path, sharding, torchrun) -> None:
    overrides = ("fsdp_min_params=0",) if sharding == "fsdp" else ()
    record = trained(tmp_path / "results", *overrides, processes=2, torchrun=torchrun)
    assert record.world_size == 2 and one_process.world_size == 1
    assert record.status == "finished" and record.n_tokens == one_process.n_tokens == 5120
    assert_same_curve(record, one_process)
    assert not list((tmp_path / "results").rglob("checkpoint.pt"))  # rank 0 removed it; no rank left another
    if not torchrun:  # sl-train removes the elastic agent's files (torchrun leaves a torchelastic_* folder)
        assert not agent_files(tmp_path / "tmp")


@pytest.mark.parametrize(("sharding", "resumed_by"), [("ddp", 2), ("fsdp", 1)])
def test_a_killed_distributed_run_resumes_to_the_uninterrupted_losses(one_process, tmp_path, sharding,
                                                                       resumed_by) -> None:  # fmt: skip
    """A crash after step 12 (checkpoints at steps 5, 10, 15); the relaunch resumes from step 10. A checkpoint holds
    the state as one process does, so an FSDP2 run's resumes with one process too."""
    results = tmp_path / "results"
    overrides = ("fsdp_min_params=0",) if sharding == "fsdp" else ()
    crashed = sl_train(results, *overrides, "debug.crash_at_step=12", processes=2)
    assert crashed.returncode == 1, crashed.stderr[-3000:]
    assert crashed.stderr.count("error:") == 1 and "1 of 1 grid points failed" in crashed.stderr
    failed = the_record(results)
    assert failed.status == "failed" and "debug.crash_at_step=12" in failed.reason and failed.world_size == 2
    assert len(list(results.rglob("checkpoint.pt"))) == 1
    resumed = sl_train(results, *overrides, "retry_failed=true", processes=resumed_by)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "from step 10 of 20" in resumed.stdout
    record = the_record(results)
    assert record.status == "finished" and record.world_size == resumed_by
    assert_same_curve(record, one_process)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("optim.batch_tokens=96",), "optim.batch_tokens gives 3 sequences per step, which do not split evenly over 2"),
        (("processes=0",), "processes=0 must be an integer ≥ 1"),
        (("device=mps",), "device=mps"),
        (("hydra/launcher=joblib", "hydra.launcher.n_jobs=2"), "run them one at a time"),
    ],
)
def test_bad_input_for_several_processes_ends_in_one_line(tmp_path, overrides, message) -> None:
    """sl-train checks the run before it starts any rank: one ``error:`` line, exit 2, no traceback, nothing left."""
    processes = 1 if "processes=0" in overrides else 2
    done = sl_train(tmp_path / "results", *overrides, processes=processes)
    assert done.returncode == 2, done.stderr[-3000:]
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ") and message in line, line
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
    assert not agent_files(tmp_path / "tmp")


def test_under_torchrun_every_rank_refuses_bad_input(tmp_path) -> None:
    """torchrun starts the ranks before any check: each refuses with one ``error:`` line and exit 2; torchrun then
    reports its own failure and exits 1 (why sl-train's processes=K is the way on one host). Nothing is left."""
    done = sl_train(tmp_path / "results", "optim.batch_tokens=96", processes=2, torchrun=True)  # 3 sequences over 2
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 2 and all("optim.batch_tokens gives 3 sequences per step" in line for line in lines)
    assert "exitcode  : 2" in done.stderr and "scaling_lab/" not in done.stderr  # no traceback of the ranks
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_the_processes_setting_and_a_launcher_agree() -> None:
    torchrun = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"}
    assert planned_ranks(1, {}) == SINGLE
    assert planned_ranks(4, {}) == Ranks(world_size=4, local_world_size=4)  # sl-train will start 4 here
    assert planned_ranks(1, torchrun) == planned_ranks(2, torchrun) == ranks_from_environment(torchrun)
    with pytest.raises(ConfigError, match="processes=3, but torchrun or SLURM started 2 processes"):
        planned_ranks(3, torchrun)
    check_processes(SINGLE, "cuda:1", jobs_at_once=4)  # one process: anything goes
    with pytest.raises(ConfigError, match="device=cuda:1 names one GPU"):
        check_processes(Ranks(world_size=2, local_world_size=2), "cuda:1")


def test_ranks_come_from_torchrun_or_default_to_one_process() -> None:
    assert ranks_from_environment({}) == SINGLE
    torchrun = {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    ranks = ranks_from_environment(torchrun)
    assert ranks == Ranks(rank=3, world_size=4, local_rank=1, local_world_size=2) and not ranks.main
    assert ranks.batch_slice(step=5, batch_sequences=8) == (5 * 8 + 3 * 2, 2)
    assert SINGLE.batch_slice(step=5, batch_sequences=8) == (40, 8)
    with pytest.raises(ConfigError, match="RANK"):
        ranks_from_environment({"WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="outside WORLD_SIZE"):
        ranks_from_environment({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="6 sequences per step"):
        check_batch_splits(6, Ranks(world_size=4))


def test_several_slurm_tasks_become_ranks() -> None:
    """What submitit's tasks see with tasks_per_node=2 on two nodes: SLURM's variables; they meet on the first host."""
    slurm = {"SLURM_JOB_ID": "42", "SLURM_STEP_NUM_TASKS": "4", "SLURM_STEP_NUM_NODES": "2",
             "SLURM_STEP_NODELIST": "node[07-08]", "SLURM_PROCID": "3", "SLURM_LOCALID": "1"}  # fmt: skip
    ranks = ranks_from_environment(slurm)
    assert ranks == Ranks(rank=3, world_size=4, local_rank=1, local_world_size=2, rendezvous="tcp://node07:20042")
    assert ranks_from_environment({**slurm, "MASTER_PORT": "29500"}).rendezvous == "tcp://node07:29500"
    assert ranks_from_environment({**slurm, "SLURM_STEP_NUM_TASKS": "1"}) == SINGLE  # one task: one process
