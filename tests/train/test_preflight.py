"""A run that cannot start here says so before it creates anything: device, memory, threads, checkpoint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from scaling_lab.errors import CheckpointError, ConfigError
from scaling_lab.results import run_dir
from scaling_lab.sweep.sweep import run_point
from scaling_lab.train.checkpoint import CHECKPOINT_NAME, save_run_state
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
