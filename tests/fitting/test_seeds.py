"""Seeds as an axis of the fit: mean vs all, the stratified seed bootstrap, the spread report, sl-fit end to end."""

import json

import numpy as np
import pandas as pd
import pytest

from scaling_lab.errors import TableError
from scaling_lab.fitting import bootstrap
from scaling_lab.fitting.bootstrap import BootstrapConfig, resolve_by, seed_indices
from scaling_lab.fitting.seeds import SINGLE_SEED_NOTE, seed_spread, spread_lines
from scaling_lab.fitting.table import TableConfig, load_input

from .test_cli import sl_fit


@pytest.fixture
def three_seeds(chinchilla_table):
    """4 budgets × 7 sizes, 3 seeds per point with 1 % independent noise each (84 rows)."""
    return chinchilla_table(noise=0.01, seed=5, budgets=np.geomspace(1e18, 1e21, 4), sizes_per_budget=7, seeds=3)


def _point_of(table: pd.DataFrame) -> np.ndarray:
    return (table["n_params"].astype(str) + "|" + table["n_tokens"].astype(str)).to_numpy()


def test_seed_resamples_draw_only_within_each_point_and_keep_every_point_size(three_seeds):
    config = BootstrapConfig(n_resamples=25, seed=4)
    points = _point_of(three_seeds)
    resamples = seed_indices(three_seeds, config)
    assert len(resamples) == 25
    drew_a_repeat = False
    for indices in resamples:
        assert len(indices) == len(three_seeds)
        drawn = pd.Series(points[indices])
        assert (drawn.value_counts() == 3).all() and set(drawn) == set(points)  # every point, 3 seeds each
        # the k-th block of 3 rows is one point's draw: all of them are rows of that point
        for block in np.split(indices, len(indices) // 3):
            assert len(set(points[block])) == 1
        drew_a_repeat |= any(len(set(block)) < 3 for block in np.split(indices, len(indices) // 3))
    assert drew_a_repeat  # with replacement
    again = seed_indices(three_seeds, config)
    assert all(np.array_equal(a, b) for a, b in zip(resamples, again, strict=True))  # deterministic given the seed
    other = seed_indices(three_seeds, BootstrapConfig(n_resamples=25, seed=5))
    assert not all(np.array_equal(a, b) for a, b in zip(resamples, other, strict=True))


def test_auto_resamples_seeds_when_a_point_has_two_and_points_otherwise(three_seeds, chinchilla_table):
    assert resolve_by(three_seeds, "auto") == "seed"
    assert resolve_by(chinchilla_table(), "auto") == "point"
    assert resolve_by(three_seeds, "point") == "point"  # an explicit choice stands
    # through bootstrap.run (what approach 3 and Kaplan call) the auto rule draws the same seed resamples
    config = BootstrapConfig(n_resamples=3, seed=1)
    via_run = bootstrap.resample_indices(three_seeds, config)
    assert all(np.array_equal(a, b) for a, b in zip(via_run, seed_indices(three_seeds, config), strict=True))


def test_mean_fits_one_row_per_point_and_all_keeps_every_seed(tmp_path, three_seeds):
    path = tmp_path / "t.csv"
    three_seeds.rename(columns={"seed": "replicate"}).to_csv(path, index=False)
    mean = load_input(path, TableConfig(seed_column="replicate"))
    everything = load_input(path, TableConfig(seed_column="replicate", seeds="all"))
    assert len(mean.points) == 28 and len(everything.points) == 84 and len(mean.seed_points) == 84
    assert sorted(set(everything.points["seed"])) == [0, 1, 2]
    row = mean.points.iloc[5]
    seeds = three_seeds[(three_seeds.n_params == row.n_params) & (three_seeds.n_tokens == row.n_tokens)]["loss"]
    assert row.loss == pytest.approx(seeds.mean()) and row.n_seeds == 3
    assert row.loss_sem == pytest.approx(seeds.std(ddof=1) / np.sqrt(3))
    assert "n_seeds" not in everything.points  # every row is one seed
    single = load_input(path, TableConfig(seed_column="absent"))  # no seed column: seed 0 for every row
    assert (single.seed_points["seed"] == 0).all() and len(single.points) == 28  # rows sharing (N, D) still averaged


def test_a_bad_seed_value_names_the_column_and_row(tmp_path, three_seeds):
    path = tmp_path / "t.csv"
    three_seeds.assign(seed=three_seeds["seed"].astype(object).where(three_seeds.index != 7, "s1")).to_csv(path)
    with pytest.raises(TableError, match="column seed must hold non-negative integers, row 7"):
        load_input(path, TableConfig())


def test_spread_numbers_by_hand_per_isoflop_slice():
    # 2 budgets × 3 sizes; seeds: two points with 2 seeds, one with 3, the rest with 1
    rows = [
        (1e3, 1e6, 3.00, 0), (1e3, 1e6, 3.10, 1),             # C = 6e9: |diff| 0.10 on mean 3.05
        (2e3, 5e5, 2.90, 0),
        (4e3, 2.5e5, 3.20, 0), (4e3, 2.5e5, 3.26, 1),         # C = 6e9: |diff| 0.06 on mean 3.23
        (1e3, 1e7, 2.50, 0), (1e3, 1e7, 2.40, 1), (1e3, 1e7, 2.60, 2),  # C = 6e10: range 0.20, std 0.1, mean 2.5
        (2e3, 5e6, 2.45, 0),
        (4e3, 2.5e6, 2.55, 0),
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=["n_params", "n_tokens", "loss", "seed"]).assign(group="", run_id="")
    table["flops"] = 6 * table["n_params"] * table["n_tokens"]
    spread = seed_spread(table)
    assert spread["n_points"] == 6 and spread["n_points_multi_seed"] == 3 and spread["max_seeds"] == 3
    assert spread["slice_by"] == "flops"
    assert spread["range_mean"] == pytest.approx((0.10 + 0.06 + 0.20) / 3)
    assert spread["range_max"] == pytest.approx(0.20)
    assert spread["range_max_pct"] == pytest.approx(100 * 0.20 / 2.5)
    std_pair = lambda d: d / np.sqrt(2)  # noqa: E731  (sample std of two values d apart)
    assert spread["std_mean"] == pytest.approx((std_pair(0.10) + std_pair(0.06) + 0.1) / 3)
    low, high = spread["slices"]
    assert low["flops"] == pytest.approx(6e9) and (low["n_points"], low["n_points_multi_seed"]) == (3, 2)
    assert low["range_mean"] == pytest.approx(0.08) and low["range_max"] == pytest.approx(0.10)
    assert low["range_mean_pct"] == pytest.approx((100 * 0.10 / 3.05 + 100 * 0.06 / 3.23) / 2)
    assert high["range_mean"] == pytest.approx(0.20) and high["std_mean_pct"] == pytest.approx(100 * 0.1 / 2.5)
    assert "eval_stderr" not in spread
    lines = "\n".join(spread_lines(spread))
    assert "3 of 6 with ≥ 2 seeds" in lines and "C=6e+09" in lines and "max 0.2000" in lines

    with_stderr = seed_spread(table.assign(loss_stderr=0.01))
    assert with_stderr["eval_stderr"] == pytest.approx(0.01) and "eval s.e. 0.0100" in "\n".join(
        spread_lines(with_stderr)
    )
    factor = table.groupby(["n_params", "n_tokens"]).ngroup().to_numpy() + 1  # every point on its own C: per N
    stretched = table.assign(n_tokens=table["n_tokens"] * factor, flops=table["flops"] * factor)
    by_size = seed_spread(stretched)
    assert by_size["slice_by"] == "n_params" and [s["n_params"] for s in by_size["slices"]] == [1e3, 2e3, 4e3]
    single = seed_spread(table.drop_duplicates(["n_params", "n_tokens"]))
    assert single["note"] == SINGLE_SEED_NOTE and spread_lines(single) == [f"    {SINGLE_SEED_NOTE} (6 points)"]


def test_sl_fit_with_seeds_reports_the_spread_and_bootstraps_seeds(tmp_path, three_seeds, capsys):
    three_seeds.to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "fit"
    args = (f"input={tmp_path / 't.csv'}", f"out={out}", "approaches=[approach2]", "bootstrap=12", "figures=false")
    done = sl_fit(*args, "fit.bootstrap.n_jobs=1", "fit.extrapolation.holdout_budgets=0", cwd=tmp_path, capsys=capsys)
    assert done.returncode == 0, done.stderr
    fit = json.loads((out / "fit.json").read_text())
    assert fit["bootstrap"]["by"] == "seed" and fit["seeds"] == "mean"
    assert (fit["n_points"], fit["n_seed_rows"]) == (28, 84)
    assert fit["seed_spread"]["n_points_multi_seed"] == 28 and len(fit["seed_spread"]["slices"]) == 4
    assert fit["approach2"]["ci95"]["a"][0] < fit["approach2"]["a"] < fit["approach2"]["ci95"]["a"][1]
    report = (out / "report.txt").read_text()
    assert "28 of 28 with ≥ 2 seeds (up to 3)" in report and "seeds within each point resampled" in report

    single = three_seeds[three_seeds["seed"] == 0]
    single.to_csv(tmp_path / "one.csv", index=False)
    args = (f"input={tmp_path / 'one.csv'}", f"out={tmp_path / 'one'}", "approaches=[approach2]", "figures=false")
    done = sl_fit(*args, "fit.extrapolation.holdout_budgets=0", cwd=tmp_path, capsys=capsys)
    assert done.returncode == 0, done.stderr
    assert SINGLE_SEED_NOTE in (tmp_path / "one" / "report.txt").read_text()
    done = sl_fit(*args, "bootstrap=4", "fit.bootstrap.by=seed", cwd=tmp_path, capsys=capsys)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "bootstrap.by=seed" in lines[0] and "one seed" in lines[0]


def _curves_with_seeds() -> pd.DataFrame:
    """3 sizes, one run per size and seed (2 seeds), each with a 4-point loss curve; seed 1 sits 0.1 higher."""
    rows = []
    for n in (1e3, 2e3, 4e3):
        for seed in (0, 1):
            for d in (1e5, 2e5, 4e5, 8e5):
                loss = 2.0 + 1e3 / n + 1e5 / d + 0.1 * seed
                rows.append((n, d, loss, 6 * n * d, "", f"n{n:g}s{seed}", seed))
    return pd.DataFrame(rows, columns=["n_params", "n_tokens", "loss", "flops", "group", "run_id", "seed"])


@pytest.mark.parametrize("mode", ["mean", "all"])
def test_curve_seed_resamples_draw_whole_runs_within_each_size(mode):
    from scaling_lab.fitting.run import seed_bootstrap
    from scaling_lab.fitting.table import FitInput, with_seeds

    curves = _curves_with_seeds()
    points = curves[curves["n_tokens"] == 8e5].reset_index(drop=True)
    data = with_seeds(FitInput(points=points, curves=curves, source="syn", kind="table"), mode)
    if mode == "mean":
        assert len(data.curves) == 12 and data.curves.groupby("run_id")["n_params"].nunique().eq(1).all()
        assert data.curves["loss"].iloc[0] == pytest.approx(2.0 + 1.0 + 1.0 + 0.05)  # the two seeds' mean
    point_resamples, curve_resamples = seed_bootstrap(data, BootstrapConfig(n_resamples=20, seed=2))
    assert len(point_resamples) == len(curve_resamples) == 20
    offsets = set()
    for resample in curve_resamples:
        if mode == "all":  # two whole runs (4 points each) of every size, drawn from that size's seeds
            assert resample.groupby("n_params").size().eq(8).all()
            assert all(run.startswith(f"n{n:g}s") for n, run in zip(resample.n_params, resample.run_id, strict=True))
            assert resample.groupby("run_id").size().isin([4, 8]).all()
        else:  # one averaged curve per size: its offset is 0, 0.05 or 0.1 (seed 0 twice, one each, seed 1 twice)
            assert len(resample) == 12 and resample["run_id"].nunique() == 3
            offset = resample["loss"] - (2.0 + 1e3 / resample["n_params"] + 1e5 / resample["n_tokens"])
            offset = offset.round(9)
            assert set(offset) <= {0.0, 0.05, 0.1}
            assert offset.groupby(resample["n_params"]).nunique().eq(1).all()  # whole runs: one offset per curve
            offsets |= set(offset)
    assert mode == "all" or offsets == {0.0, 0.05, 0.1}


def test_an_unknown_seeds_mode_names_the_setting(tmp_path, three_seeds, capsys):
    three_seeds.to_csv(tmp_path / "t.csv", index=False)
    done = sl_fit(f"input={tmp_path / 't.csv'}", f"out={tmp_path / 'fit'}", "fit.table.seeds=median", cwd=tmp_path,
                  capsys=capsys)  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1
    assert "table.seeds='median' is unknown: choose mean or all" in lines[0]
    assert not (tmp_path / "fit").exists()


def test_akima_profiles_count_a_seed_mean_as_its_seeds(three_seeds):
    from scaling_lab.fitting.approach2 import size_profile
    from scaling_lab.fitting.seeds import average_points

    per_seed = three_seeds[three_seeds["flops"] == three_seeds["flops"].min()]
    averaged = average_points(per_seed)
    for mine, theirs in zip(size_profile(averaged), size_profile(per_seed), strict=True):
        np.testing.assert_allclose(mine, theirs)  # same mean losses, and 3 points per size (the noise of 3 seeds)
    assert (size_profile(averaged)[3] == 3).all()


def test_akima_with_measured_seeds_bootstraps_the_seeds(three_seeds):
    from scaling_lab.fitting.approach2 import Approach2Config
    from scaling_lab.fitting.run import FitConfig, fit_input, report_text
    from scaling_lab.fitting.table import FitInput, with_seeds

    data = with_seeds(FitInput(points=three_seeds, curves=None, source="syn", kind="table"), "mean")
    config = FitConfig(approaches=("approach2",), approach2=Approach2Config(curve="akima", seed_noise_resamples=50),
                       bootstrap=BootstrapConfig(n_resamples=10, n_jobs=1))  # fmt: skip
    outcome = fit_input(data, config)
    assert outcome.meta["bootstrap"]["by"] == "seed" and outcome.results["approach2"].a.interval is not None
    assert "seeds within each point resampled" in report_text(outcome)
