"""A run that cannot start here says so before it creates anything: device, memory, threads, checkpoint."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scaling_lab.errors import CheckpointError, ConfigError
from scaling_lab.results import run_dir
from scaling_lab.sweep.sweep import run_point
from scaling_lab.train import preflight
from scaling_lab.train.checkpoint import CHECKPOINT_NAME, save_run_state
from scaling_lab.train.distributed import Ranks
from scaling_lab.train.placement import memory_bytes
from scaling_lab.train.plan import make_plan
from scaling_lab.train.preflight import check_can_start, check_fits_memory


def test_a_tiny_run_can_start(tiny_config) -> None:
    check_can_start(tiny_config())


def test_a_device_this_machine_lacks_is_named_with_what_to_use(tiny_config) -> None:
    index = torch.cuda.device_count()  # one past the last GPU, or cuda:0 on a machine without CUDA
    with pytest.raises(ConfigError, match=rf"^device=cuda:{index} is not available .*: use "):
        check_can_start(tiny_config(device=f"cuda:{index}"))


def test_a_model_larger_than_memory_names_the_setting(tiny_config) -> None:
    with pytest.raises(
        ConfigError,
        match=r"^model\.target_n=1e\+15 with a vocabulary of 256 ids .* more than the .*"
        r"GiB of this machine's memory: choose a smaller model",
    ):
        check_can_start(tiny_config(model={"preset": None, "target_n": 1e15}))


def test_a_micro_batch_larger_than_memory_gets_one_that_fits(tiny_config) -> None:
    """The suggested optim.micro_batch_sequences passes the same check (gradient accumulation keeps the batch)."""
    memory, _ = memory_bytes("cpu")
    batch_tokens = 2 ** (int(memory).bit_length() - 4)  # ≫ memory / (activation bytes per token), a power of two
    config = tiny_config(optim={"batch_tokens": batch_tokens}, budget={"value": float(batch_tokens)})
    with pytest.raises(ConfigError, match=r"^optim\.micro_batch_sequences: .* set optim\.micro_batch_sequences=(\d+)"
                       ) as error:  # fmt: skip
        check_fits_memory(config, make_plan(config, vocab_size=256))
    micro = int(str(error.value).rsplit("=", 1)[1].split()[0])
    smaller = tiny_config(optim={"batch_tokens": batch_tokens, "micro_batch_sequences": micro},
                          budget={"value": float(batch_tokens)})  # fmt: skip
    check_fits_memory(smaller, make_plan(smaller, vocab_size=256))


# The fix a model too large for one GPU gets: the fewest processes that fit it sharded, and the threshold.
SHARDED_FIX = re.compile(
    r"it fits sharded across (\d+) or more processes, one GPU each \(processes=\1, or as many torchrun ranks or SLURM"
    r" tasks\), with fsdp_min_params at most (\d+); or choose a smaller model$"
)
GPU_MEMORY = 80 * 10**9  # an 80 GB GPU (H100, A100 80GB)


@pytest.fixture
def gpus_of_80gb(monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory check sees an 80 GB device for device=cuda (this machine may have no GPU: the check reads only
    the device's memory, the estimate is computed as on any host)."""
    monkeypatch.setattr(preflight, "memory_bytes", lambda device: (GPU_MEMORY, "cuda:0"))


def test_a_model_too_large_for_one_gpu_fits_sharded_across_the_gpus_it_names(tiny_config, gpus_of_80gb) -> None:
    """Refused in one process, the model passes the same check at the number of processes the refusal names, with
    fsdp_min_params at most its size; one process fewer, or replicated by DDP, it is refused again."""
    model = {"preset": None, "target_n": 8e9}  # 18 bytes per parameter: 144 GB in one process
    one = tiny_config(model=model, device="cuda")
    plan = make_plan(one, vocab_size=256)
    with pytest.raises(ConfigError, match=r"^model\.target_n=8e\+09 .* about 13\d GiB for them alone \(18 bytes"
                       r" each: weights, gradients, AdamW moments\), more than the 74.5 GiB of cuda:0: it fits"
                       ) as error:  # fmt: skip
        check_fits_memory(one, plan)
    processes, n_params = map(int, SHARDED_FIX.search(str(error.value)).groups())
    assert n_params == plan.n_params_total and processes > 2  # 16/2 + 2 bytes per parameter: 80 GB in each of 2
    sharded = tiny_config(model=model, device="cuda", optim={"micro_batch_sequences": 1}, fsdp_min_params=n_params)
    plan = make_plan(sharded, vocab_size=256)
    check_fits_memory(sharded, plan, ranks=Ranks(world_size=processes, local_world_size=processes))
    fewer = processes - 1
    with pytest.raises(ConfigError, match=rf"in each of {fewer} processes for them alone \(16 bytes each of weights,"
                       rf" gradients and AdamW moments split over {fewer} processes, .*: it fits sharded across"
                       rf" {processes} or more processes"):  # fmt: skip
        check_fits_memory(sharded, plan, ranks=Ranks(world_size=fewer, local_world_size=fewer))
    replicated = tiny_config(model=model, device="cuda", fsdp_min_params=n_params + 1)
    with pytest.raises(ConfigError, match=rf"\(22 bytes each in every one of {processes} processes: .* DDP's gradient"
                       rf" buckets\), .*: it fits sharded across {processes} or more"):  # fmt: skip
        check_fits_memory(replicated, plan, ranks=Ranks(world_size=processes, local_world_size=processes))


def test_cpu_processes_share_the_machine_memory_and_are_not_told_to_shard(tiny_config) -> None:
    """On the CPU every process of the run takes its share of this machine's memory; each adds its own bf16 copy
    and activations, so more processes never fit a model that one process cannot: no sharding advice."""
    memory, _ = memory_bytes("cpu")
    model = {"preset": None, "target_n": memory / 10}  # 1.8× the memory in one process; a third per process at 8
    with pytest.raises(ConfigError, match=r"GiB of this machine's memory: choose a smaller model$"):
        check_fits_memory(tiny_config(model=model), make_plan(tiny_config(model=model), vocab_size=256))
    sharded = tiny_config(model=model, fsdp_min_params=0)
    with pytest.raises(ConfigError, match=r"in each of 8 processes for them alone .* more than the .* GiB of this"
                       r" machine's memory per process \(.* GiB shared by 8\): choose a smaller model$"):  # fmt: skip
        check_fits_memory(sharded, make_plan(sharded, vocab_size=256), ranks=Ranks(world_size=8, local_world_size=8))


@pytest.mark.parametrize(
    ("launch", "environment"),
    [(("processes=2",), {}), ((), {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"})],
    ids=["processes-setting", "torchrun-rank"],
)
def test_sl_train_refuses_a_model_too_large_for_its_processes(tmp_path: Path, launch, environment) -> None:
    """Through the real CLI, 2 processes (the setting, or as one of 2 torchrun ranks) with fsdp_min_params=0: one
    error line, exit 2, nothing created, no rank started."""
    memory, _ = memory_bytes("cpu")
    (tmp_path / "text.txt").write_text("A small text to train on. " * 400)
    environ = {**os.environ, "OMP_NUM_THREADS": "1", **environment}
    command = [sys.executable, "-m", "scaling_lab.cli.train", *launch, "model=target",
               f"model.target_n={memory / 10:.6g}",
               "fsdp_min_params=0", "data=local_files", f"data.sources.0.paths=[{tmp_path / 'text.txt'}]",
               "data.sequence_length=32", "optim.batch_tokens=256", "budget.value=10240", "logger=none",
               "threads=1", "device=cpu", f"paths.results_dir={tmp_path / 'results'}",
               f"paths.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert re.match(r"error: model\.target_n=.* GiB in each of 2 processes for them alone \(16 bytes each .* split"
                    r" over 2 processes, .* more than the .* GiB of this machine's memory per process \(.* GiB"
                    r" shared by 2\): choose a smaller model$", lines[0]), lines[0]  # fmt: skip
    assert "Traceback" not in done.stdout + done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.txt"]


def test_more_threads_than_cores_is_refused(tiny_config) -> None:
    with pytest.raises(ConfigError, match=r"^threads=100000 is more than the \d+ cores"):
        check_can_start(tiny_config(threads=100_000))


def test_an_untrusted_checkpoint_stops_the_run_before_it_writes_anything(tiny_config, tmp_path: Path) -> None:
    config = tiny_config()
    folder = run_dir(config.paths.results_dir, config.sweep, config.run_id())
    folder.mkdir(parents=True)
    path = folder / CHECKPOINT_NAME
    path.write_bytes(b"PK\x03\x04 not really a zip archive")
    message = rf"^checkpoint {re.escape(str(path))} is not trusted: it is corrupt or truncated"
    with pytest.raises(CheckpointError, match=message):
        run_point(config)
    assert sorted(p.name for p in folder.iterdir()) == [CHECKPOINT_NAME]  # no record, no lock
    model = torch.nn.Linear(2, 2)
    save_run_state(path, model, torch.optim.AdamW(model.parameters()), {"step": 1})
    check_can_start(config)  # a checkpoint of plain state is trusted
