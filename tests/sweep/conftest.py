"""Shared by the launcher tests (local launchers, SLURM): a tiny real sweep, run with sl-train -m and collected."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

TINY_GRID = ("model=n1k,n3k", "budget.value=20480,40960")
"""4 points: two byte-level models of about 1k and 3k parameters, two budgets of 20 and 40 batches of 1024 tokens."""


@pytest.fixture
def tiny_sweep(tmp_path: Path) -> Callable[..., list[str]]:
    """``tiny_sweep(launcher, *overrides, grid=TINY_GRID)``: the sl-train -m command of a tiny sweep (sweep=tiny;
    an override replaces the value set here for its key), with its corpus (this package's own sources: real text,
    no network), cache, results and Hydra folders under tmp_path. Records land in ``tmp_path / "results" / "tiny"``."""
    corpus = tmp_path / "corpus.txt"
    sources = sorted(Path(__file__).parents[2].glob("scaling_lab/**/*.py"))
    corpus.write_text("\n".join(p.read_text() for p in sources))

    def command(launcher: str, *overrides: str, grid: tuple[str, ...] = TINY_GRID) -> list[str]:
        base = [
            *grid, "optim.batch_tokens=1024",
            "data=local_files", f"data.sources.0.paths=[{corpus}]", "data.eval_bytes=4096", "curve_eval_tokens=2048",
            f"paths.cache_dir={tmp_path / 'cache'}", f"paths.results_dir={tmp_path / 'results'}", "sweep=tiny",
            "logger=none", "debug.progress=false", f"launcher={launcher}", f"hydra.sweep.dir={tmp_path / 'multirun'}",
        ]  # fmt: skip
        replaced = {override.split("=", 1)[0] for override in overrides}  # an override replaces the base value
        kept = [override for override in base if override.split("=", 1)[0] not in replaced]
        return [sys.executable, "-m", "scaling_lab.cli.train", "-m", *kept, *overrides]

    return command


@pytest.fixture
def collect_tiny_sweep(tmp_path: Path) -> Callable[[], tuple[pd.DataFrame, pd.DataFrame]]:
    """``collect_tiny_sweep()``: sl-collect over the tiny sweep's results; (points table, curves table)."""

    def collect() -> tuple[pd.DataFrame, pd.DataFrame]:
        out = tmp_path / "table"
        run = subprocess.run(
            [sys.executable, "-m", "scaling_lab.cli.collect", f"stores=[{tmp_path / 'results'}]", f"out={out}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        return pd.read_parquet(f"{out}.parquet"), pd.read_parquet(f"{out}_curves.parquet")

    return collect
