"""One run across two CPU processes (gloo), launched as a user launches it: ``torchrun -m scaling_lab.cli.train``.

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
from scaling_lab.train.distributed import SINGLE, Ranks, check_batch_splits, ranks_from_environment

# 20 optimizer steps of 8 sequences × 32 tokens, an eval (and a train-loss point) after every step
TWENTY_STEPS = (
    "model=n1k", "budget.value=5120", "data.sequence_length=32", "data.eval_bytes=1024", "optim.batch_tokens=256",
    "optim.lr=0.02", "eval_every_tokens=256", "threads=1", "device=cpu", "debug.progress=false", "logger=none",
)  # fmt: skip
TOLERANCE = 1e-5


def sl_train(results: Path, *overrides: str, processes: int = 1) -> subprocess.CompletedProcess:
    """The real sl-train in a subprocess: plain python for one process, torchrun for several."""
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"] if processes > 1 else []
    paths = (f"paths.results_dir={results}", f"paths.cache_dir={default_cache_dir()}")
    environ = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, *launcher, "-m", "scaling_lab.cli.train", *paths, *TWENTY_STEPS, *overrides]
    return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=300, check=False)


def the_record(results: Path) -> RunRecord:
    (record,) = load_records(results)
    return record


def trained(results: Path, *overrides: str, processes: int = 1) -> RunRecord:
    done = sl_train(results, *overrides, processes=processes)
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


@pytest.mark.parametrize("sharding", ["ddp", "fsdp"])
def test_two_processes_train_the_one_process_run(one_process, tmp_path, sharding) -> None:
    overrides = ("fsdp_min_params=0",) if sharding == "fsdp" else ()
    record = trained(tmp_path / "results", *overrides, processes=2)
    assert record.world_size == 2 and one_process.world_size == 1
    assert record.status == "finished" and record.n_tokens == one_process.n_tokens == 5120
    assert_same_curve(record, one_process)
    assert not list((tmp_path / "results").rglob("checkpoint.pt"))  # rank 0 removed it; no rank left another


@pytest.mark.parametrize(("sharding", "resumed_by"), [("ddp", 2), ("fsdp", 1)])
def test_a_killed_distributed_run_resumes_to_the_uninterrupted_losses(one_process, tmp_path, sharding,
                                                                       resumed_by) -> None:  # fmt: skip
    """A crash after step 12 (checkpoints at steps 5, 10, 15); the relaunch resumes from step 10. A checkpoint holds
    the state as one process does, so an FSDP2 run's resumes with one process too."""
    results = tmp_path / "results"
    overrides = ("fsdp_min_params=0",) if sharding == "fsdp" else ()
    crashed = sl_train(results, *overrides, "debug.crash_at_step=12", processes=2)
    assert crashed.returncode == 1, crashed.stderr[-3000:]
    failed = the_record(results)
    assert failed.status == "failed" and "debug.crash_at_step=12" in failed.reason and failed.world_size == 2
    assert len(list(results.rglob("checkpoint.pt"))) == 1
    resumed = sl_train(results, *overrides, "retry_failed=true", processes=resumed_by)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "from step 10 of 20" in resumed.stdout
    record = the_record(results)
    assert record.status == "finished" and record.world_size == resumed_by
    assert_same_curve(record, one_process)


def test_a_batch_that_does_not_split_over_the_processes_is_refused(tmp_path) -> None:
    """Each rank refuses it before it starts (one ``error:`` line and exit 2 each; torchrun then reports its own
    failure and exits 1), and nothing is left behind."""
    done = sl_train(tmp_path / "results", "optim.batch_tokens=96", processes=2)  # 3 sequences over 2 processes
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 2 and all("optim.batch_tokens gives 3 sequences per step" in line for line in lines)
    assert "exitcode  : 2" in done.stderr and "scaling_lab/" not in done.stderr  # no traceback of the ranks
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


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
