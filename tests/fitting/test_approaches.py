import numpy as np
import pytest

from scaling_lab.errors import ConfigError, FitError
from scaling_lab.fitting.approach1 import Approach1Config, envelope, fit_approach1
from scaling_lab.fitting.approach2 import (
    Approach2Config,
    Approach2Result,
    fit_approach2,
    profile_minimum,
    profile_residuals,
)
from scaling_lab.fitting.approach3 import fit_approach3
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.kaplan import KaplanConfig, KaplanResult, fit_kaplan, fit_law
from scaling_lab.fitting.laws import CHINCHILLA_APPROACH3 as TRUTH
from scaling_lab.fitting.seeds import assign_budgets
from scaling_lab.fitting.synthetic import curves_table


def test_budgets_cluster_by_relative_flops():
    labels = assign_budgets(np.array([1e18, 1.02e18, 0.99e18, 1e19, 1.01e19]), rtol=0.05)
    assert len(np.unique(labels)) == 2 and labels[0] == labels[1] == labels[2]


def test_profile_minimum_of_a_parabola_and_bracketing():
    x = np.linspace(-1, 1, 7)
    at, value, bracketed = profile_minimum(x, 2.0 + (x - 0.3) ** 2, 2)
    assert at == pytest.approx(0.3) and value == pytest.approx(2.0) and bracketed
    _, _, bracketed = profile_minimum(x, 2.0 + (x - 3.0) ** 2, 2)
    assert not bracketed


def test_approaches_2_and_3_agree_on_noise_free_data(chinchilla_table):
    # Dense, narrow profiles (±0.5 decades) keep the parabola's bias on the true isoFLOP curve small.
    table = chinchilla_table(sizes_per_budget=15, span_decades=0.5)
    two = fit_approach2(table)
    three = fit_approach3(table)
    assert two.n_budgets == 6 and all(b.bracketed for b in two.budgets)
    assert two.a.value == pytest.approx(three.a.value, abs=0.01)
    assert two.b.value == pytest.approx(three.b.value, abs=0.01)
    assert three.a.value == pytest.approx(TRUTH.a, abs=1e-4)
    for budget in two.budgets:
        assert budget.n_opt == pytest.approx(TRUTH.n_opt(budget.flops), rel=0.05)


def test_cubic_profiles_also_recover_the_exponent(chinchilla_table):
    result = fit_approach2(chinchilla_table(sizes_per_budget=15), Approach2Config(curve="cubic"))
    assert result.curve == "cubic" and result.a.value == pytest.approx(TRUTH.a, abs=0.02)


def test_unbracketed_budgets_are_excluded_with_their_reason(chinchilla_table):
    table = chinchilla_table()
    # Keep only sizes above N_opt at the two smallest budgets: their minima fall outside the sampled range.
    small = table["flops"] < 5e18
    table = table[~small | (table["n_params"] > 1.3 * TRUTH.n_opt(table["flops"]))]
    result = fit_approach2(table, Approach2Config(min_sizes=3))
    excluded = [b for b in result.budgets if not b.used]
    assert len(excluded) == 2 and all("not bracketed" in b.reason for b in excluded)
    assert result.n_budgets == 4
    assert Approach2Result.from_dict(result.to_dict()) == result


def test_approach2_too_few_budgets_is_a_fit_error(chinchilla_table):
    table = chinchilla_table()
    with pytest.raises(FitError, match="approach2 needs 3 budgets"):
        fit_approach2(table[table["flops"] < 5e18])
    with pytest.raises(ConfigError, match="min_sizes"):
        Approach2Config(curve="cubic", min_sizes=3)


def test_approach2_bootstrap_intervals(chinchilla_table):
    result = fit_approach2(
        chinchilla_table(noise=0.01, seed=3), bootstrap_config=BootstrapConfig(n_resamples=30, n_jobs=1)
    )
    low, high = result.a.interval
    assert low < result.a.value < high and len(result.bootstrap_samples) + result.n_bootstrap_failed == 30


def test_approach2_bootstrap_keeps_every_slice_bracketed_on_a_five_size_design(parabolic_table):
    table = parabolic_table(seed=0)
    result = fit_approach2(table, bootstrap_config=BootstrapConfig(n_resamples=50, n_jobs=1))
    assert result.n_bootstrap_failed == 0 and len(result.bootstrap_samples) == 50
    low, high = result.a.interval
    assert low < result.a.value < high and high - low < 0.15
    # resamples keep the design: the sizes of every slice are the original ones, only the losses move
    fitted, residuals = profile_residuals(table, Approach2Config())
    assert len(residuals) == len(table) and np.abs(fitted - table["loss"]).max() < 0.05


def test_envelope_picks_the_lowest_curve_at_each_compute():
    curves = curves_table(TRUTH, sizes=np.geomspace(1e7, 1e9, 7), points_per_curve=30)
    env = envelope(curves, 100)
    for row in env.itertuples():
        # no run is lower than the envelope at that C (interpolated runs that cover it)
        at_c = curves.groupby("run_id").apply(
            lambda r, c=row.flops: np.interp(np.log(c), np.log(r["flops"]), r["loss"], left=np.inf, right=np.inf)
        )
        assert row.loss <= at_c.min() + 1e-12


def test_approach1_follows_the_law_frontier():
    curves = curves_table(TRUTH, sizes=np.geomspace(1e7, 1e10, 13), max_tokens_per_param=200, points_per_curve=60)
    result = fit_approach1(curves)
    assert result.n_sizes_on_envelope >= 5
    # Sizes are discrete (13 over 3 decades), so a is close to, not equal to, the law's
    assert result.a.value == pytest.approx(TRUTH.a, abs=0.06)
    assert result.a.value + result.b.value == pytest.approx(1.0, abs=0.02)


def test_approach1_needs_several_runs():
    curves = curves_table(TRUTH, sizes=np.array([1e8, 2e8]))
    with pytest.raises(FitError, match="at least 3 runs"):
        fit_approach1(curves)
    with pytest.raises(ConfigError, match="n_flops"):
        Approach1Config(n_flops=3)


def test_kaplan_single_law_recovery():
    import pandas as pd

    x = np.geomspace(1e6, 1e10, 12)
    points = pd.DataFrame({"x": x, "loss": 1.7 + 400.0 / x**0.34})
    law = fit_law(points, KaplanConfig())
    assert law.E.value == pytest.approx(1.7, rel=1e-4) and law.alpha.value == pytest.approx(0.34, rel=1e-4)


def test_kaplan_on_a_grid_fits_three_laws_or_says_why(chinchilla_table):
    result = fit_kaplan(chinchilla_table(noise=0.005, seed=1))
    assert set(result.laws) | set(result.skipped) == {"L_N", "L_D", "L_C"}
    assert not set(result.laws) & set(result.skipped)
    fitted = list(result.laws.values())
    assert fitted and all(law.alpha.value > 0 for law in fitted)
    assert KaplanResult.from_dict(result.to_dict()) == result
    tiny = chinchilla_table().head(3)
    with pytest.raises(FitError, match="kaplan"):
        fit_kaplan(tiny)
