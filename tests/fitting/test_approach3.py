import numpy as np
import pytest

from scaling_lab.errors import ConfigError, FitError
from scaling_lab.fitting.approach3 import (
    FRONTIER,
    PARAMS,
    Approach3Config,
    Approach3Result,
    chinchilla_start_grid,
    fit_approach3,
)
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.laws import BESIROGLU_2024, CHINCHILLA_APPROACH3
from scaling_lab.fitting.objectives import objective_and_gradient, objective_values

TRUTH = CHINCHILLA_APPROACH3


def test_start_grid_is_chinchillas_4500_points():
    grid = chinchilla_start_grid()
    assert grid.shape == (4500, 5)
    # theta = (e, a, alpha, b, beta): e in {-1..1}, a, b in {0..25}, alpha, beta in {0..2}
    assert sorted(set(grid[:, 0])) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert sorted(set(grid[:, 1])) == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
    assert sorted(set(grid[:, 2])) == [0.0, 0.5, 1.0, 1.5, 2.0]


@pytest.mark.parametrize("objective", ["huber", "least_squares", "least_squares_loss"])
def test_analytic_gradient_matches_finite_differences(chinchilla_table, objective):
    table = chinchilla_table(noise=0.02, seed=3)
    log_x = np.log(np.stack([table["n_params"], table["n_tokens"]]))
    log_loss = np.log(table["loss"].to_numpy())
    theta = np.array([0.4, 6.2, 0.3, 5.8, 0.25])
    value, grad = objective_and_gradient(theta, log_x, log_loss, objective, 1e-3)
    step = 1e-6
    numeric = [
        (
            objective_and_gradient(theta + step * e, log_x, log_loss, objective, 1e-3)[0]
            - objective_and_gradient(theta - step * e, log_x, log_loss, objective, 1e-3)[0]
        )
        / (2 * step)
        for e in np.eye(5)
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)
    # the vectorised screen agrees with the single evaluation
    assert objective_values(theta[None, :], log_x, log_loss, objective, 1e-3)[0] == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("law", [CHINCHILLA_APPROACH3, BESIROGLU_2024])
def test_noise_free_data_recovers_the_law_exactly(chinchilla_table, law):
    result = fit_approach3(chinchilla_table(law=law))
    for name in ("E", "A", "B", "alpha", "beta"):
        assert getattr(result.estimates, name).value == pytest.approx(getattr(law, name), rel=1e-4), name
    assert result.converged and result.n_converged >= 1
    assert result.n_starts == 4500 and result.n_points == 54


def test_noisy_data_recovers_the_law_within_tolerance(chinchilla_table):
    # 1 % multiplicative noise on 54 points: exponents within 0.03, frontier exponent a within 0.02
    fitted = fit_approach3(chinchilla_table(noise=0.01, seed=11)).estimates
    assert fitted.alpha.value == pytest.approx(TRUTH.alpha, abs=0.03)
    assert fitted.beta.value == pytest.approx(TRUTH.beta, abs=0.03)
    assert fitted.E.value == pytest.approx(TRUTH.E, abs=0.1)
    assert fitted.a.value == pytest.approx(TRUTH.a, abs=0.02)


def test_frontier_of_the_result_is_the_closed_form(chinchilla_table):
    result = fit_approach3(chinchilla_table(noise=0.01, seed=2))
    fitted = result.estimates
    alpha, beta, A, B = fitted.alpha.value, fitted.beta.value, fitted.A.value, fitted.B.value
    assert result.a.value == pytest.approx(beta / (alpha + beta), rel=1e-12)
    assert result.b.value == pytest.approx(alpha / (alpha + beta), rel=1e-12)
    assert fitted.G.value == pytest.approx((alpha * A / (beta * B)) ** (1 / (alpha + beta)), rel=1e-12)
    assert result.law.n_opt(1e21) == pytest.approx(fitted.G.value * (1e21 / 6) ** result.a.value, rel=1e-12)
    # the reported frontier rows are the table's largest budget ×1, ×10, ×100
    assert [row.flops for row in result.frontier] == pytest.approx([1e21, 1e22, 1e23])
    row = result.frontier[1]
    assert row.n_opt.value * row.d_opt.value * 6 == pytest.approx(1e22, rel=1e-9)
    assert row.tokens_per_param.value == pytest.approx(row.d_opt.value / row.n_opt.value, rel=1e-12)


def test_objective_choice_is_recorded_and_changes_the_fit(chinchilla_table):
    table = chinchilla_table(noise=0.02, seed=5)
    table.loc[3, "loss"] *= 1.3  # one outlier: Huber resists it, least squares does not
    huber = fit_approach3(table, Approach3Config(objective="huber"))
    squares = fit_approach3(table, Approach3Config(objective="least_squares"))
    assert huber.objective == "huber" and squares.objective == "least_squares"
    assert huber.to_dict()["objective"] == "huber"
    assert abs(huber.estimates.alpha.value - TRUTH.alpha) < abs(squares.estimates.alpha.value - TRUTH.alpha)


def test_bootstrap_is_seeded_independent_of_workers_and_roundtrips(chinchilla_table):
    table = chinchilla_table(noise=0.01, seed=4)
    one = fit_approach3(table, Approach3Config(), BootstrapConfig(n_resamples=12, seed=7, n_jobs=1))
    two = fit_approach3(table, Approach3Config(), BootstrapConfig(n_resamples=12, seed=7, n_jobs=2))
    assert one.bootstrap_samples == two.bootstrap_samples  # same resamples, same order, whatever the workers
    assert len(one.bootstrap_samples) == 12 and set(one.to_dict()["ci95"]) == set(PARAMS + FRONTIER)
    for name in PARAMS + FRONTIER:
        estimate = getattr(one.estimates, name)
        assert estimate.level == 0.95 and estimate.interval is not None, name
        assert estimate.low <= estimate.value <= estimate.high or name in ("A", "B", "G"), name
    restored = Approach3Result.from_dict(one.to_dict())
    assert restored == one


def test_bootstrap_by_model_size_resamples_whole_sizes(chinchilla_table):
    table = chinchilla_table(noise=0.01, seed=4)
    result = fit_approach3(table, Approach3Config(), BootstrapConfig(n_resamples=6, seed=1, by="n_params", n_jobs=1))
    assert result.extra["bootstrap_by"] == "n_params" and len(result.bootstrap_samples) + result.n_bootstrap_failed == 6


def test_single_model_size_and_too_few_points_raise_fit_error(chinchilla_table):
    table = chinchilla_table()
    with pytest.raises(FitError, match="2 model sizes"):
        fit_approach3(table.assign(n_params=1e8))
    with pytest.raises(FitError, match="2 token budgets"):
        fit_approach3(table.assign(n_tokens=1e10))
    with pytest.raises(FitError, match="at least 6 points"):
        fit_approach3(table.head(5))


def test_bad_config_names_the_field():
    with pytest.raises(ConfigError, match=r"approach3\.objective"):
        Approach3Config(objective="l1")
    with pytest.raises(ConfigError, match=r"approach3\.delta"):
        Approach3Config(delta=0)
