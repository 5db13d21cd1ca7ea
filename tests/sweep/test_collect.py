"""sl-collect over a real store written by the store's own writer (records built from real RunRecord fields)."""

import subprocess
import sys

import pandas as pd
import pytest

from scaling_lab.results.provenance import run_config_hash
from scaling_lab.results.record import RunRecord
from scaling_lab.results.store import write_record


def _record(run_id: str, n_params: int, points: list[tuple[float, float]]) -> RunRecord:
    config = {"optim": {"lr": 1e-3}, "model": {"n_params": n_params}}
    example = {
        "schema_version": RunRecord.__dataclass_fields__["schema_version"].default,
        "run_id": run_id,
        "sweep": "demo",
        "status": "finished",
        "reason": "",
        "config": config,
        "config_hash": run_config_hash(config),
        "seed": 0,
        "data_mix": "embedded",
        "data_mix_hash": "abc",
        "n_params_total": n_params,
        "n_params_nonembed": n_params // 2,
        "tied_embeddings": False,
        "points": [
            {
                "n_tokens": d,
                "loss": loss,
                "flops_6nd": 6 * n_params * d,
                "flops_exact": 7 * n_params * d,
                "train_loss": loss + 0.1,
            }
            for d, loss in points
        ],
        "n_tokens_planned": int(points[-1][0]),
        "n_tokens": int(points[-1][0]),
        "curve": [
            {
                "n_tokens": d,
                "flops_6nd": 6 * n_params * d,
                "flops_exact": 7 * n_params * d,
                "loss": loss,
                "train_loss": loss + 0.1,
            }
            for d, loss in points
        ],
        "tokens_per_second": 1e4,
        "flops_per_second": 1e9,
        "mfu": None,
        "wall_time_s": 1.0,
        "device": "cpu",
        "versions": {"python": "3.11"},
        "git_commit": None,
        "diverged_at_step": None,
        "created_at": "2026-11-22T00:00:00+00:00",
        "finished_at": "2026-11-22T00:01:00+00:00",
    }
    return RunRecord.from_dict(example)


def _collect(store, out) -> subprocess.CompletedProcess:
    """sl-collect of one store into out.parquet/.csv, in a subprocess."""
    command = [sys.executable, "-m", "scaling_lab.cli.collect", f"stores=[{store}]", f"out={out}"]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_collect_writes_one_row_per_point_as_parquet_and_csv(tmp_path):
    store = tmp_path / "results"
    write_record(_record("a", 1000, [(100_000, 3.0)]), store)
    write_record(_record("b", 2000, [(50_000, 3.1), (100_000, 2.9)]), store)  # a WSD run: two D points
    result = _collect(store, tmp_path / "table")
    assert result.returncode == 0, result.stderr
    points = pd.read_parquet(tmp_path / "table.parquet")
    assert sorted(zip(points.run_id, points.n_tokens, strict=True)) == [("a", 100_000), ("b", 50_000), ("b", 100_000)]
    assert {"n_params_total", "n_params_nonembed", "flops_6nd", "flops_exact", "loss", "group"} <= set(points)
    fitter_columns = ["run_id", "n_params_total", "n_params_nonembed", "n_tokens", "flops_6nd", "flops_exact", "loss"]
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "table.csv")[fitter_columns], points[fitter_columns], check_dtype=False
    )
    assert len(pd.read_parquet(tmp_path / "table_curves.parquet")) == 3


@pytest.mark.parametrize("args", [["stores=[/nonexistent/store]", "out=x"]])
def test_collect_missing_store_is_one_clear_line(tmp_path, args):
    result = subprocess.run(
        [sys.executable, "-m", "scaling_lab.cli.collect", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: stores=['/nonexistent/store']: no such results directory; pass the sweep's results root(s)"
    ]


def test_collect_writes_each_eval_sets_columns_and_the_fit_reads_them_by_target(tmp_path):
    from scaling_lab.fitting.laws import CHINCHILLA_APPROACH3
    from scaling_lab.fitting.synthetic import isoflop_table
    from scaling_lab.fitting.table import TableConfig, load_input
    from tests.fitting.conftest import BUDGETS, SET_FACTORS, write_store

    table = isoflop_table(CHINCHILLA_APPROACH3, budgets=BUDGETS[:3], noise=0.0, seed=0)
    store = write_store(tmp_path / "results", table, suite="s1")
    result = _collect(store, tmp_path / "table")
    assert result.returncode == 0, result.stderr
    points = pd.read_csv(tmp_path / "table.csv")
    per_set = {f"{metric}_{name}" for metric in ("loss", "bpb") for name in SET_FACTORS}
    assert per_set <= set(points) and set(points["eval_suite_hash"]) == {"s1"}
    assert per_set <= set(pd.read_csv(tmp_path / "table_curves.csv"))
    for target, metric in (("code", "bpb"), ("prose", "loss"), ("all", "bpb")):
        config = TableConfig(target=target, metric=metric)
        from_table, from_store = load_input(tmp_path / "table.csv", config), load_input(store, config)
        assert from_table.points.attrs["loss_column"] == f"{metric}_{target}"
        pd.testing.assert_series_equal(from_table.points["loss"], from_store.points["loss"], check_exact=False)
