"""A tiny real sweep (4 points) through each local launcher, end to end: sl-train -m, then sl-collect."""

import subprocess

import pytest


@pytest.mark.parametrize("launcher", ["sequential", "local"])
def test_tiny_sweep_through_each_local_launcher(launcher, tmp_path, tiny_sweep, collect_tiny_sweep):
    command = tiny_sweep(launcher, *(["hydra.launcher.n_jobs=2"] if launcher == "local" else []))
    run = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]

    table, curves = collect_tiny_sweep()
    assert len(table) == 4 and table.run_id.is_unique
    assert set(table.n_tokens) == {20480, 40960}
    assert table.n_params_total.nunique() == 2
    assert (table.status == "finished").all() and table.loss.between(0.5, 6.0).all()
    assert (table.flops_exact > table.flops_6nd).all()  # attention and the output head on top of 6ND
    assert set(curves.run_id) == set(table.run_id)

    # A relaunch of the same sweep trains nothing: every point is skipped by its finished record.
    again = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skip tiny/") == 4, again.stdout[-3000:]
