"""A seed axis end to end: sl-train -m ... seed=0,1 trains one run per seed, the records and sl-collect's table keep
the seed, and the fitter reads the two runs as two seeds of one (N, D) point."""

import subprocess

from scaling_lab.fitting.table import TableConfig, load_input
from scaling_lab.results.store import load_records


def test_a_seed_axis_trains_one_run_per_seed_and_the_tables_keep_it(tmp_path, tiny_sweep, collect_tiny_sweep):
    command = tiny_sweep("sequential", grid=("model=n1k", "budget.value=20480", "seed=0,1"))
    run = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, check=False, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]

    records = load_records(tmp_path / "results")
    assert sorted(r.seed for r in records) == [0, 1] and all(r.config["seed"] == r.seed for r in records)
    assert len({r.run_id for r in records}) == 2 and len({r.config_hash for r in records}) == 2

    table, curves = collect_tiny_sweep()
    assert sorted(table.seed) == [0, 1] and list(table.data_seed) == [0, 0]
    assert table.run_id.is_unique and table.n_tokens.nunique() == 1 and table.n_params_total.nunique() == 1
    assert table.loss.nunique() == 2  # the model seed changes the result
    assert set(curves.seed) == {0, 1}

    data = load_input(tmp_path / "results", TableConfig())
    assert len(data.points) == 1 and data.points["n_seeds"].iloc[0] == 2 and len(data.seed_points) == 2
    assert data.points["loss"].iloc[0] == table.loss.mean()
    assert data.curves is not None and data.curves["n_seeds"].eq(2).all()  # the two curves averaged into one
    assert data.curves["run_id"].nunique() == 1
