"""Bad values through the real console entry points: one ``error:`` line naming the field or file, exit 2, nothing
left behind.

Four classes, each checked before any work: output paths that cannot be written (under /proc, a file where a folder
goes, a folder where a file goes) for every entry point that writes; numbers out of range (a budget of 1e30 tokens,
a seed beyond 64 bits, NaN, a model or micro-batch larger than any machine's memory, a vocabulary the tokenizer
trainer cannot allocate); a device this machine lacks; and a checkpoint the weights-only loader refuses or cannot
read. Every case runs the CLI in a subprocess and compares its folder before and after.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from .test_bad_inputs import GOOD_CSV, TINY_TRAIN, Case, _fill, prepare, problems_of, run_cases, snapshot
from .test_bad_inputs_store import _record_path_of
from .test_security import Payload


def train(*overrides: str) -> tuple[str, ...]:
    """TINY_TRAIN with ``overrides`` replacing the arguments of the same keys (Hydra refuses a key given twice)."""
    keys = {override.split("=")[0] for override in overrides}
    return (*(arg for arg in TINY_TRAIN if arg.split("=")[0] not in keys), *overrides)


PLAN = ("--no-probe", "model=n1k", "budget.value=1e5", "data.sequence_length=16", "optim.batch_tokens=128",
        "paths.cache_dir={tmp}/cache")  # fmt: skip
FIT = ("input={tmp}/t.csv", "approaches=[approach2]", "figures=false")  # three points: the fit itself would fail
STORE = {"store/sweep/.keep": ""}  # an existing results root for sl-collect
VERIFY = ("fit_json={tmp}/absent/fit.json", "store={tmp}/store")  # out= is checked before the fit is read
PROC = "/proc/scaling_lab_test"  # root may write almost anywhere, but nothing can be created here
SEED_BEYOND_64_BITS = str(2**64)
# A device index this machine lacks whether or not it has GPUs; bare cuda and mps where they are absent.
MISSING_DEVICES = [f"cuda:{torch.cuda.device_count()}"]
if not torch.cuda.is_available():
    MISSING_DEVICES.append("cuda")
if not torch.backends.mps.is_available():
    MISSING_DEVICES.append("mps")


def _pickled_object(path: Path) -> bytes:
    """A run state whose progress holds an object: unpickling it would create ``code_ran`` in the case folder."""
    state = {"model": {}, "optimizer": {}, "rng": {}, "progress": {"payload": Payload(path.parent / "code_ran")}}
    torch.save(state, path)
    return path.read_bytes()


def _truncated(path: Path) -> bytes:
    """The first half of a valid run state (a write cut short)."""
    torch.save({"model": {"w": torch.zeros(64)}, "optimizer": {}, "rng": {}, "progress": {"step": 1}}, path)
    data = path.read_bytes()
    return data[: len(data) // 2]


def _not_a_run_state(path: Path) -> bytes:
    """A readable, safe torch file that holds no run state."""
    torch.save([1, 2, 3], path)
    return path.read_bytes()


CHECKPOINTS: dict[str, Callable[[Path], bytes]] = {
    "checkpoint-pickled-object": _pickled_object,
    "checkpoint-truncated": _truncated,
    "checkpoint-random-bytes": lambda path: os.urandom(4096),
    "checkpoint-not-a-run-state": _not_a_run_state,
}
"""Checkpoint cases: the bytes planted as the run's checkpoint.pt (no record: the relaunch would resume from it)."""

CASES = [
    # output paths: sl-train's results and cache folders
    Case(name="results-dir-under-proc", cli="train", args=train(f"paths.results_dir={PROC}"),
         names=("paths.results_dir", "/proc")),
    Case(name="results-dir-is-a-file", cli="train", args=train("paths.results_dir={tmp}/text.txt"),
         names=("paths.results_dir", "text.txt")),
    Case(name="results-dir-under-a-file", cli="train", args=train("paths.results_dir={tmp}/text.txt/results"),
         names=("paths.results_dir", "text.txt")),
    Case(name="cache-dir-under-proc", cli="train", args=train(f"paths.cache_dir={PROC}"),
         names=("paths.cache_dir", "/proc")),
    Case(name="cache-dir-under-a-file", cli="train", args=train("paths.cache_dir={tmp}/text.txt/cache"),
         names=("paths.cache_dir", "text.txt")),
    # output paths: sl-fit (checked before fitting: this table's fit fails), sl-collect, sl-plan, sl-verify
    Case(name="fit-out-under-proc", cli="fit", files={"t.csv": GOOD_CSV}, args=(*FIT, f"out={PROC}"),
         names=("out=", "/proc")),
    Case(name="fit-out-is-a-file", cli="fit", files={"t.csv": GOOD_CSV}, args=(*FIT, "out={tmp}/text.txt"),
         names=("out=", "text.txt")),
    Case(name="fit-out-under-a-file", cli="fit", files={"t.csv": GOOD_CSV}, args=(*FIT, "out={tmp}/text.txt/fit"),
         names=("out=", "text.txt")),
    Case(name="collect-out-under-proc", cli="collect", files=STORE, args=("stores=[{tmp}/store]", f"out={PROC}/t"),
         names=("out=", "/proc")),
    Case(name="collect-out-under-a-file", cli="collect", files=STORE,
         args=("stores=[{tmp}/store]", "out={tmp}/text.txt/t"), names=("out=", "text.txt")),
    Case(name="collect-out-is-a-folder", cli="collect", files={**STORE, "t.parquet/.keep": ""},
         args=("stores=[{tmp}/store]", "out={tmp}/t"), names=("out=", "t.parquet")),
    Case(name="plan-out-under-proc", cli="plan", args=(*PLAN, "--out", f"{PROC}/plan.csv"), names=("--out", "/proc")),
    Case(name="plan-out-is-a-folder", cli="plan", args=(*PLAN, "--out", "{tmp}"), names=("--out", "{tmp}")),
    Case(name="verify-out-under-proc", cli="verify", files=STORE, args=(*VERIFY, f"out={PROC}"),
         names=("out=", "/proc")),
    Case(name="verify-out-under-a-file", cli="verify", files=STORE, args=(*VERIFY, "out={tmp}/text.txt/verify"),
         names=("out=", "text.txt")),
    Case(name="plan-cache-dir-under-a-file", cli="plan", args=(*PLAN[:-1], "paths.cache_dir={tmp}/text.txt/cache"),
         names=("paths.cache_dir", "text.txt")),
    # numbers out of range, caught by the typed configs or by the memory estimate before anything is built
    Case(name="budget-1e30-tokens", cli="train", args=train("budget.value=1e30"), names=("budget.value",)),
    Case(name="budget-1e30-flops", cli="train", args=train("budget.kind=flops_6nd", "budget.value=1e30"),
         names=("budget.value",)),
    Case(name="seed-beyond-64-bits", cli="train", args=train(f"seed={SEED_BEYOND_64_BITS}"), names=("seed=",)),
    Case(name="seed-negative", cli="train", args=train("seed=-1"), names=("seed=-1",)),
    Case(name="data-seed-beyond-64-bits", cli="train", args=train(f"data.seed={SEED_BEYOND_64_BITS}"),
         names=("data.seed",)),
    Case(name="lr-nan", cli="train", args=train("optim.lr=nan"), names=("optim.lr",)),
    Case(name="warmup-inf", cli="train", args=train("schedule.warmup_tokens=inf"), names=("schedule.warmup_tokens",)),
    Case(name="eval-every-inf", cli="train", args=train("eval_every_tokens=inf"), names=("eval_every_tokens",)),
    Case(name="target-n-beyond-memory", cli="train", args=train("model=target", "model.target_n=1e15"),
         names=("model.target_n",)),
    Case(name="width-beyond-memory", cli="train",
         args=train("model=custom", "model.n_layers=64", "model.width=65536", "model.n_heads=512"),
         names=("model.width",)),
    Case(name="width-beyond-bound", cli="train",
         args=train("model=custom", "model.n_layers=1", "model.width=1000000000", "model.n_heads=1"),
         names=("model.width",)),
    Case(name="bpe-vocab-1e9", cli="train",
         args=train("data.tokenizer.kind=bpe", "data.tokenizer.vocab_size=1000000000"),
         names=("data.tokenizer.vocab_size",)),
    Case(name="vocabulary-beyond-memory", cli="train",
         args=train("data.tokenizer.kind=bpe", "data.tokenizer.vocab_size=1048576", "model=custom",
                    "model.n_layers=1", "model.width=131072", "model.n_heads=1024"),
         names=("data.tokenizer.vocab_size",)),
    Case(name="sequence-beyond-memory", cli="train",
         args=train("data.sequence_length=10000000000", "optim.batch_tokens=10000000000", "budget.value=1e10"),
         names=("data.sequence_length",)),
    Case(name="micro-batch-beyond-memory", cli="train",
         args=train("optim.batch_tokens=1099511627776", "budget.value=1099511627776"),
         names=("optim.micro_batch_sequences",)),
    Case(name="threads-beyond-cores", cli="train", args=train("threads=100000"), names=("threads=100000",)),
    # devices this machine lacks
    *[Case(name=f"device-{device.replace(':', '')}", cli="train", args=train(f"device={device}"),
           names=(f"device={device}", "not available")) for device in MISSING_DEVICES],
    # checkpoints the weights-only loader refuses or cannot read: never loaded another way
    *[Case(name=name, cli="train", args=TINY_TRAIN, names=("checkpoint.pt", "delete it")) for name in CHECKPOINTS],
]  # fmt: skip


def _problems(cases: list[Case], tmp_path: Path) -> dict[str, str]:
    """Run every case's CLI (two at a time); what went wrong in each case that did not end in one named error line,
    exit 2, with the case folder as it was before."""
    folders = {}
    for case in cases:
        tmp = folders[case.name] = prepare(tmp_path / case.name, case.files)
        if case.name in CHECKPOINTS:
            path = _record_path_of([_fill(arg, tmp) for arg in TINY_TRAIN]).parent / "checkpoint.pt"
            path.parent.mkdir(parents=True)
            path.write_bytes(CHECKPOINTS[case.name](path))
    before = {name: snapshot(folder) for name, folder in folders.items()}
    return {case.name: "; ".join(found) for case, done in run_cases(cases, folders)
            if (found := problems_of(case, folders[case.name], before[case.name], done))}  # fmt: skip


def _check(cases: list[Case], tmp_path: Path) -> None:
    problems = _problems(cases, tmp_path)
    assert not problems, "\n".join(f"{name}: {text}" for name, text in problems.items())


def test_the_table_covers_every_class_and_entry_point() -> None:
    assert len({case.name for case in CASES}) == len(CASES)
    assert {case.cli for case in CASES} == {"train", "fit", "collect", "plan", "verify"}
    assert {"checkpoint.pt"} <= {name for case in CASES for name in case.names}


QUICK = ("results-dir-under-a-file", "fit-out-under-proc", "budget-1e30-tokens", "target-n-beyond-memory",
         f"device-{MISSING_DEVICES[0].replace(':', '')}", "checkpoint-pickled-object")  # fmt: skip


def test_one_bad_value_of_each_class_ends_in_one_error_line_and_leaves_nothing(tmp_path: Path) -> None:
    _check([case for case in CASES if case.name in QUICK], tmp_path)


@pytest.mark.slow
def test_every_bad_value_ends_in_one_error_line_naming_it_and_leaves_nothing(tmp_path: Path) -> None:
    _check(CASES, tmp_path)
