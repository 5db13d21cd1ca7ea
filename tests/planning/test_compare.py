import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from scaling_lab.errors import FitError
from scaling_lab.fitting.approach3 import Approach3Config
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.laws import ChinchillaLaw
from scaling_lab.fitting.synthetic import isoflop_table
from scaling_lab.planning.compare import compare_fits, fit_groups, fit_sources, plot_comparison

BUDGETS = np.logspace(15, 18, 4)
FAST_FIT = Approach3Config(n_polish=4, bootstrap_n_polish=1)
FAST_BOOTSTRAP = BootstrapConfig(n_resamples=20, seed=0, n_jobs=1)


def _mixes(laws: dict[str, ChinchillaLaw]) -> pd.DataFrame:
    tables = []
    for seed, (name, law) in enumerate(laws.items()):
        table = isoflop_table(law, budgets=BUDGETS, sizes_per_budget=7, noise=0.005, seed=seed)
        tables.append(table.assign(group=name, run_id=[f"{name}{r}" for r in table["run_id"]]))
    return pd.concat(tables, ignore_index=True)


def test_detects_a_different_data_exponent_and_draws_both_panels(tmp_path):
    web = ChinchillaLaw(E=1.8, A=400.0, B=1200.0, alpha=0.34, beta=0.36)
    code = ChinchillaLaw(E=1.8, A=400.0, B=1200.0, alpha=0.34, beta=0.26)
    table = _mixes({"web": web, "code": code})
    fits = fit_groups(table, config=FAST_FIT, bootstrap_config=FAST_BOOTSTRAP)
    comparison = compare_fits(fits)
    flagged = {d.quantity for d in comparison.differences}
    assert {"beta", "a"} <= flagged  # beta differs, so does a = beta/(alpha+beta)
    assert "alpha" not in flagged
    beta = next(d for d in comparison.differences if d.quantity == "beta")
    assert (beta.first, beta.second) == ("code", "web")
    assert "do not overlap" in comparison.statement()
    assert list(comparison.table().index) == ["code", "web"]

    paths = plot_comparison(fits, tmp_path, flops_range=(1e15, 1e20), table=table)
    assert sorted(p.name for p in paths) == ["mix_comparison.png", "mix_comparison.svg"]
    image = imread(tmp_path / "mix_comparison.png")
    assert image.shape[0] > 300 and image.shape[1] > 800


def test_identical_mixes_from_two_table_files_report_no_difference(tmp_path):
    law = ChinchillaLaw(E=1.8, A=400.0, B=1200.0, alpha=0.34, beta=0.36)
    table = _mixes({"first": law, "second": law})
    paths = {}
    for name, rows in table.groupby("group"):
        paths[name] = tmp_path / f"{name}.csv"
        rows.drop(columns="group").to_csv(paths[name], index=False)
    fits = fit_sources(paths, config=FAST_FIT, bootstrap_config=FAST_BOOTSTRAP)
    assert list(fits) == ["first", "second"] and str(paths["first"]) in fits["first"].source
    comparison = compare_fits(fits)
    assert comparison.differences == ()
    assert "no difference" in comparison.statement()


def test_fits_without_samples_are_named_and_one_group_is_refused():
    law = ChinchillaLaw(E=1.8, A=400.0, B=1200.0, alpha=0.34, beta=0.36)
    table = _mixes({"first": law, "second": law})
    fits = fit_groups(table, config=FAST_FIT)
    assert "no bootstrap samples for first, second" in compare_fits(fits).statement()
    with pytest.raises(FitError, match="at least 2 groups"):
        compare_fits({"first": fits["first"]})
    with pytest.raises(FitError, match="'mix' column"):
        fit_groups(table, group_column="mix")
