"""A tiny real sweep (4 points) through each local launcher, end to end: sl-train -m, then sl-collect."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


@pytest.mark.parametrize("launcher", ["sequential", "local"])
def test_tiny_sweep_through_each_local_launcher(launcher, tmp_path):
    corpus = tmp_path / "corpus.txt"
    sources = sorted(Path(__file__).parents[2].glob("scaling_lab/**/*.py"))
    corpus.write_text("\n".join(p.read_text() for p in sources))
    results = tmp_path / "results"
    command = [
        sys.executable, "-m", "scaling_lab.cli.train", "-m",
        "model=n1k,n3k", "budget.value=20480,40960", "optim.batch_tokens=1024",
        "data=local_files", f"data.sources.0.paths=[{corpus}]", "data.eval_tokens=4096", "curve_eval_tokens=2048",
        f"paths.cache_dir={tmp_path / 'cache'}", f"paths.results_dir={results}", "sweep=tiny",
        "logger=none", "debug.progress=false", f"launcher={launcher}", f"hydra.sweep.dir={tmp_path / 'multirun'}",
    ]  # fmt: skip
    if launcher == "local":
        command.append("hydra.launcher.n_jobs=2")
    run = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]

    collect = subprocess.run(
        [sys.executable, "-m", "scaling_lab.cli.collect", f"stores=[{results}]", f"out={tmp_path / 'table'}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert collect.returncode == 0, collect.stderr
    table = pd.read_parquet(tmp_path / "table.parquet")
    assert len(table) == 4 and table.run_id.is_unique
    assert set(table.n_tokens) == {20480, 40960}
    assert table.n_params_total.nunique() == 2
    assert (table.status == "finished").all() and table.loss.between(0.5, 6.0).all()
    assert (table.flops_exact > table.flops_6nd).all()  # attention and the output head on top of 6ND
    curves = pd.read_parquet(tmp_path / "table_curves.parquet")
    assert set(curves.run_id) == set(table.run_id)

    # A relaunch of the same sweep trains nothing: every point is skipped by its finished record.
    again = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skip tiny/") == 4, again.stdout[-3000:]
