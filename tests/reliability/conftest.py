"""Shared helpers of the reliability drills: real records (tests/results/conftest.py's factory, loaded by path)
and the real console entry points run as subprocesses."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

torch.set_num_threads(1)

TESTS = Path(__file__).parents[1]


def load_helpers(relative: str) -> ModuleType:
    """A helper module of another tests folder (e.g. ``results/conftest.py``), loaded by path rather than copied:
    conftest files are not importable by package name."""
    name = "tests_" + relative.removesuffix(".py").replace("/", "_")
    spec = importlib.util.spec_from_file_location(name, TESTS / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results_factory() -> ModuleType:
    """tests/results/conftest.py (record_fields, wsd_fields)."""
    return load_helpers("results/conftest.py")


def run_cli(
    module: str, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m scaling_lab.cli.<module> args...`` in ``cwd`` with one BLAS thread; output captured as text."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true",
                   **(env or {})}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", f"scaling_lab.cli.{module}", *args],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture(scope="session")
def records() -> ModuleType:
    """The results tests' record factory: ``records.record_fields(**overrides)`` gives a valid RunRecord's fields."""
    return results_factory()
