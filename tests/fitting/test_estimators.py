"""Akima isoFLOP minima (Porian et al. 2024) and variable projection (Czech et al. 2026) against independent
computations: scipy's own interpolant and non-negative least squares, hand-weighted regressions, and the
multi-start fit of the same objective."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.interpolate import Akima1DInterpolator
from scipy.optimize import nnls

from scaling_lab.errors import ConfigError, FitError
from scaling_lab.fitting.approach2 import (
    AKIMA_GRID_PER_INTERVAL,
    Approach2Config,
    Approach2Result,
    akima_minimum,
    fit_approach2,
    seed_noise_std,
)
from scaling_lab.fitting.approach3 import (
    PARAMS,
    Approach3Config,
    Approach3Result,
    design,
    fit_approach3,
    variable_projection_grid,
)
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.laws import BESIROGLU_2024, CHINCHILLA_APPROACH3, ChinchillaLaw

from .test_cli import sl_fit

AKIMA = Approach2Config(curve="akima")

# One asymmetric isoFLOP slice: 5 sizes, its minimum between the 2nd and 3rd (log N = 18.0 .. 20.0)
SLICE_LOG_N = np.array([18.0, 18.5, 19.0, 19.5, 20.0])
SLICE_LOSS = np.array([3.30, 3.12, 3.10, 3.16, 3.40])


def interpolant_minimum(log_x: np.ndarray, log_loss: np.ndarray) -> float:
    """The exact minimum of scipy's Akima interpolant: the root of its derivative with the lowest value."""
    interpolant = Akima1DInterpolator(log_x, log_loss)
    roots = interpolant.derivative().roots()
    inside = roots[(roots > log_x[0]) & (roots < log_x[-1])]
    return float(inside[np.argmin(interpolant(inside))])


def slice_table(flops: float, log_n: np.ndarray, loss: np.ndarray) -> pd.DataFrame:
    n = np.exp(log_n)
    return pd.DataFrame({"n_params": n, "n_tokens": flops / (6 * n), "flops": flops, "loss": loss})


def test_akima_minimum_is_the_interpolants_minimum_within_one_grid_step():
    exact = interpolant_minimum(SLICE_LOG_N, np.log(SLICE_LOSS))
    assert 18.5 < exact < 19.0  # asymmetric: left of the lowest sampled point
    at, value, bracketed = akima_minimum(SLICE_LOG_N, np.log(SLICE_LOSS))
    step = (SLICE_LOG_N[-1] - SLICE_LOG_N[0]) / ((len(SLICE_LOG_N) - 1) * AKIMA_GRID_PER_INTERVAL - 1)
    assert bracketed and abs(at - exact) <= step / 2 + 1e-12
    assert value == pytest.approx(Akima1DInterpolator(SLICE_LOG_N, np.log(SLICE_LOSS))(exact), abs=1e-6)
    # a profile still falling at the largest size is not bracketed
    assert not akima_minimum(SLICE_LOG_N, np.log(SLICE_LOSS[::-1].cumsum()[::-1]))[2]


def test_seed_noise_is_log_log_interpolated_and_constant_outside():
    loss = np.array([1.0, 3.0, np.sqrt(21.0), 7.0, 50.0])
    # (3, 0.002) to (7, 0.05): at the geometric mean of the losses, the geometric mean of the stds
    expected = [0.002, 0.002, np.sqrt(0.002 * 0.05), 0.05, 0.05]
    np.testing.assert_allclose(seed_noise_std(loss, AKIMA), expected, rtol=1e-12)


def test_per_budget_minima_and_the_weighted_power_law_by_hand():
    # Three slices: the same profile shifted by 0.3 / 0.7 in log N, so N* moves by exactly that (Akima is
    # translation-invariant); noise far below the loss differences puts every std on Porian's floor.
    flops = np.array([1e18, 1e19, 1e20])
    shifts = np.array([0.0, 0.3, 0.7])
    spacings = np.array([0.5, 0.5, 0.25])
    tables = [
        slice_table(c, SLICE_LOG_N[2] + (SLICE_LOG_N - SLICE_LOG_N[2]) * s / 0.5 + shift, SLICE_LOSS)
        for c, shift, s in zip(flops, shifts, spacings, strict=True)
    ]
    config = Approach2Config(curve="akima", seed_noise_std=(1e-9, 1e-9))
    result = fit_approach2(pd.concat(tables, ignore_index=True), config)
    log_n_opt = np.array([np.log(b.n_opt) for b in result.budgets])
    for table, got in zip(tables, log_n_opt, strict=True):
        exact = interpolant_minimum(np.log(table["n_params"].to_numpy()), np.log(table["loss"].to_numpy()))
        assert got == pytest.approx(exact, abs=0.6 * 0.5 / 99)
    floors = 0.33 * spacings  # a third of the mean spacing of the sampled log N
    np.testing.assert_allclose([b.log_n_opt_std for b in result.budgets], floors, rtol=1e-9)
    # weighted least squares of log N* on log C with weights 1/std², solved by hand (normal equations)
    w, x = 1 / floors**2, np.log(flops)
    columns = np.stack([x, np.ones_like(x)], axis=1)
    slope, intercept = np.linalg.solve(columns.T @ (w[:, None] * columns), columns.T @ (w * log_n_opt))
    assert result.a.value == pytest.approx(slope, rel=1e-9)
    assert result.k_n.value == pytest.approx(np.exp(intercept), rel=1e-9)
    assert result.seed_noise == {"std": [1e-9, 1e-9], "loss": [3.0, 7.0], "resamples": 1000}
    assert Approach2Result.from_dict(result.to_dict()) == result


def test_akima_recovers_the_law_and_its_bootstrap_is_seeded(chinchilla_table):
    assert fit_approach2(chinchilla_table(), AKIMA).a.value == pytest.approx(CHINCHILLA_APPROACH3.a, abs=0.005)
    table = chinchilla_table(noise=0.002, seed=3)
    config = Approach2Config(curve="akima", seed_noise_std=(0.006, 0.006))
    one = fit_approach2(table, config, BootstrapConfig(n_resamples=200, seed=1))
    two = fit_approach2(table, config, BootstrapConfig(n_resamples=50, seed=2))
    assert one.a.value == two.a.value  # the point estimate's weights do not depend on the bootstrap
    again = fit_approach2(table, config, BootstrapConfig(n_resamples=200, seed=1))
    assert again.bootstrap_samples == one.bootstrap_samples
    low, high = one.a.interval
    assert low < one.a.value < high and low < CHINCHILLA_APPROACH3.a < high
    assert len(one.bootstrap_samples) + one.n_bootstrap_failed == 200


def test_a_slice_whose_noisy_minima_leave_the_sampled_sizes_is_excluded(chinchilla_table):
    # 3 sizes under seed noise far deeper than the profiles: a copy's minimum is its lowest point, on an end of
    # the 3 sizes in about 2 copies of 3, so every slice is excluded and the fit says why
    table = chinchilla_table(sizes_per_budget=3, span_decades=0.3)
    with pytest.raises(FitError, match=r"more than half\)"):
        fit_approach2(table, Approach2Config(curve="akima", min_sizes=3, seed_noise_std=(0.5, 0.5)))


def test_new_settings_are_checked():
    for kwargs, field in [
        ({"curve": "spline"}, "curve"),
        ({"curve": "akima", "min_sizes": 2}, "min_sizes"),
        ({"seed_noise_std": (0.0, 0.1)}, "seed_noise_std"),
        ({"seed_noise_std": (0.1,)}, "seed_noise_std"),
        ({"seed_noise_loss": (7.0, 3.0)}, "seed_noise_loss"),
        ({"seed_noise_resamples": 5}, "seed_noise_resamples"),
    ]:
        with pytest.raises(ConfigError, match=rf"approach2\.{field}"):
            Approach2Config(**kwargs)
    with pytest.raises(ConfigError, match=r"approach3\.method='vp' is unknown"):
        Approach3Config(method="vp")


@pytest.mark.parametrize("law", [CHINCHILLA_APPROACH3, BESIROGLU_2024])
def test_vpnls_recovers_the_law_beside_the_multistart_fit(chinchilla_table, law):
    result = fit_approach3(chinchilla_table(law=law), Approach3Config(method="vpnls"))
    for name in PARAMS:
        assert getattr(result.vpnls.estimates, name).value == pytest.approx(getattr(law, name), rel=1e-4), name
        assert getattr(result.estimates, name).value == pytest.approx(getattr(law, name), rel=1e-4), name
    assert result.objective == "huber" and result.vpnls.objective == "least_squares_loss"
    assert not result.vpnls.at_grid_edge
    assert Approach3Result.from_dict(result.to_dict()) == result


def test_vpnls_finds_the_multistart_optimum_of_its_objective_on_noisy_data(chinchilla_table):
    table = chinchilla_table(noise=0.01, seed=11)
    vpnls = fit_approach3(table, Approach3Config(method="vpnls")).vpnls
    multistart = fit_approach3(table, Approach3Config(objective="least_squares_loss"))  # 4,500 starts
    for name in PARAMS:
        assert getattr(vpnls.estimates, name).value == pytest.approx(getattr(multistart.estimates, name).value,
                                                                      rel=1e-4), name  # fmt: skip
    assert vpnls.objective_value == pytest.approx(multistart.objective_value, rel=1e-9)


def test_the_grid_solves_non_negative_least_squares_exactly(chinchilla_table):
    # The data term is absent (B ≈ 0): on noisy data the best grid point has a coefficient held at 0 by the constraint
    law = ChinchillaLaw(E=1.8, A=400.0, B=1e-12, alpha=0.3, beta=0.3)
    table = chinchilla_table(law=law, noise=0.01, seed=2)
    log_x, log_loss = design(table)
    loss = np.exp(log_loss)
    exponents = np.linspace(0.05, 0.95, 19)
    params, _ = variable_projection_grid(log_x[0], log_x[1], loss, exponents)
    columns = np.stack([np.ones_like(loss), np.exp(-params["alpha"] * log_x[0]), np.exp(-params["beta"] * log_x[1])])
    coef, residual = nnls(columns.T, loss)
    np.testing.assert_allclose([params["E"], params["A"], params["B"]], coef, rtol=1e-6, atol=1e-9)
    assert min(coef) == 0.0  # the constraint is active: the enumeration of supports was needed
    # and no other grid point does better under the same constraint
    best = min(
        nnls(np.stack([np.ones_like(loss), np.exp(-a * log_x[0]), np.exp(-b * log_x[1])]).T, loss)[1]
        for a in exponents
        for b in exponents
    )
    assert residual == pytest.approx(best, rel=1e-9)


def test_vpnls_bootstrap_intervals(chinchilla_table):
    table = chinchilla_table(noise=0.01, seed=4)
    result = fit_approach3(table, Approach3Config(method="vpnls"), BootstrapConfig(n_resamples=12, seed=3, n_jobs=1))
    low, high = result.vpnls.estimates.a.interval
    assert low <= result.vpnls.estimates.a.value <= high and result.vpnls.n_bootstrap_failed == 0
    assert Approach3Result.from_dict(result.to_dict()) == result


def test_sl_fit_writes_akima_and_vpnls_into_fit_json_and_the_report(tmp_path, chinchilla_table, capsys):
    chinchilla_table(noise=0.002, seed=2).to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "fit"
    done = sl_fit(
        f"input={tmp_path / 't.csv'}",
        f"out={out}",
        "approaches=[approach3,approach2]",
        "bootstrap=8",
        "figures=true",
        "fit.bootstrap.n_jobs=1",
        "fit.approach2.curve=akima",
        "fit.approach2.seed_noise_std=[0.006,0.006]",
        "fit.approach3.method=vpnls",
        "fit.extrapolation.holdout_budgets=0",
        cwd=tmp_path,
        capsys=capsys,
    )
    assert done.returncode == 0, done.stderr
    fit = json.loads((out / "fit.json").read_text())
    a2, vpnls = fit["approach2"], fit["approach3"]["vpnls"]
    assert a2["curve"] == "akima" and a2["seed_noise"]["std"] == [0.006, 0.006] and set(a2["ci95"]) >= {"a", "b"}
    assert all(b["log_n_opt_std"] > 0 for b in a2["budgets"] if b["used"])
    assert vpnls["objective"] == "least_squares_loss" and set(vpnls["ci95"]) >= {"alpha", "beta", "a"}
    assert fit["approach3"]["objective"] == "huber"
    report = (out / "report.txt").read_text()
    assert "variable projection" in report and "per-budget akima minima" in report and "seed noise" in report
    assert (out / "isoflop.png").exists()


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("fit.approach2.curve=spline", "approach2.curve='spline' is unknown"),
        ("fit.approach2.seed_noise_std=0.01", "fit.approach2.seed_noise_std=0.01 must be a list of 2 numbers"),
        ("fit.approach2.seed_noise_std=[0.01,x]", "must be a list of 2 numbers"),
        ("fit.approach2.seed_noise_loss=[7,3]", "must be increasing"),
        ("fit.approach2.seed_noise_resamples=1e3", "fit.approach2.seed_noise_resamples=1000.0 must be a whole number"),
        ("fit.approach3.method=vp", "approach3.method='vp' is unknown: choose one of multistart, vpnls"),
        ("fit.approach2.budget_rtol=abc", "fit.approach2.budget_rtol='abc' must be a number"),
    ],
)
def test_bad_estimator_settings_end_with_one_error_line(tmp_path, chinchilla_table, capsys, override, needle):
    chinchilla_table().to_csv(tmp_path / "t.csv", index=False)
    done = sl_fit(f"input={tmp_path / 't.csv'}", f"out={tmp_path / 'fit'}", override, cwd=tmp_path, capsys=capsys)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines
    assert not (tmp_path / "fit").exists()
