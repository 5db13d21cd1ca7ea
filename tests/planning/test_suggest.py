import numpy as np
import pandas as pd
import pytest

from scaling_lab.errors import ConfigError, FitError
from scaling_lab.fitting.approach3 import Approach3Config
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.laws import ChinchillaLaw
from scaling_lab.fitting.synthetic import isoflop_table
from scaling_lab.planning.compare import fit_groups
from scaling_lab.planning.laws import LoadedLaw
from scaling_lab.planning.suggest import candidate_grid, rank_candidates, residual_sd

TRUTH = ChinchillaLaw(E=1.8, A=400.0, B=1200.0, alpha=0.34, beta=0.36)
DATA_BUDGETS = np.logspace(15, 17, 3)  # the compute range the fit has seen


@pytest.fixture(scope="module")
def fitted():
    table = isoflop_table(TRUTH, budgets=DATA_BUDGETS, sizes_per_budget=7, noise=0.01, seed=1)
    fits = fit_groups(
        table,
        config=Approach3Config(n_polish=4, bootstrap_n_polish=1),
        bootstrap_config=BootstrapConfig(n_resamples=40, seed=0, n_jobs=1),
    )
    return fits[""], table


def test_residual_sd_recovers_the_noise(fitted):
    loaded, table = fitted
    assert residual_sd(loaded, table) == pytest.approx(0.01, rel=0.5)


def test_per_flop_favours_extending_the_range_below(fitted):
    loaded, table = fitted
    candidates = candidate_grid(flops=[1e14, 1e16, 1e18], sizes_per_budget=3, loaded=loaded)
    ranked = rank_candidates(loaded, candidates, noise_sd=residual_sd(loaded, table))
    assert ranked["flops"].iloc[0] == pytest.approx(1e14)
    assert (ranked["width_after"] <= ranked["width_before"] + 1e-15).all()
    assert ranked["shrink_per_flop"].is_monotonic_decreasing


def test_extrapolated_loss_is_pinned_by_runs_beyond_the_range(fitted):
    loaded, table = fitted
    candidates = candidate_grid(flops=[1e16, 1e18], sizes_per_budget=3, loaded=loaded)
    ranked = rank_candidates(
        loaded, candidates, noise_sd=residual_sd(loaded, table), target="loss", target_flops=1e21, rank_by="shrink"
    )
    assert ranked["flops"].iloc[:3].tolist() == pytest.approx([1e18] * 3)  # every beyond-range run beats every interior
    assert ranked["shrink"].iloc[0] > 3 * ranked["shrink"].iloc[-1]


def test_more_noise_or_fewer_repeats_shrink_less(fitted):
    loaded, _ = fitted
    candidates = pd.DataFrame({"n_params": [1e8], "n_tokens": [2e9]})
    quiet = rank_candidates(loaded, candidates, noise_sd=0.005)["shrink"].iloc[0]
    noisy = rank_candidates(loaded, candidates, noise_sd=0.05)["shrink"].iloc[0]
    repeated = rank_candidates(loaded, candidates, noise_sd=0.05, repeats=100)["shrink"].iloc[0]
    assert quiet > noisy and repeated == pytest.approx(quiet, rel=1e-9)


def test_needs_bootstrap_samples_and_a_known_target(fitted):
    loaded, _ = fitted
    candidates = pd.DataFrame({"n_params": [1e8], "n_tokens": [2e9]})
    with pytest.raises(FitError, match=r"bootstrap\.n_resamples"):
        rank_candidates(LoadedLaw(law=TRUTH, source="truth"), candidates, noise_sd=0.01)
    with pytest.raises(ConfigError, match="target_flops"):
        rank_candidates(loaded, candidates, noise_sd=0.01, target="loss")
    with pytest.raises(ConfigError, match="rank_by"):
        rank_candidates(loaded, candidates, noise_sd=0.01, rank_by="cost")


@pytest.mark.slow
def test_ranking_agrees_with_refitting_the_bootstrap_with_the_new_run():
    # The check the linear update stands in for: add the run (3 seeds, loss from the truth plus 1% noise),
    # refit with the same bootstrap, and compare the interval of the loss at 1e21 FLOPs.
    config, bootstrap = Approach3Config(n_polish=4, bootstrap_n_polish=1), BootstrapConfig(n_resamples=100, seed=0)
    table = isoflop_table(TRUTH, budgets=DATA_BUDGETS, sizes_per_budget=7, noise=0.01, seed=1)
    loaded = fit_groups(table, config=config, bootstrap_config=bootstrap)[""]
    candidates = candidate_grid(flops=[1e16, 1e18], sizes_per_budget=3, loaded=loaded)
    ranked = rank_candidates(
        loaded,
        candidates,
        noise_sd=residual_sd(loaded, table),
        target="loss",
        target_flops=1e21,
        rank_by="shrink",
        repeats=3,
    )
    widths = []
    for row in (ranked.iloc[0], ranked.iloc[-1]):
        noise = np.exp(0.01 * np.random.default_rng(5).standard_normal(3))
        run = pd.DataFrame(
            {
                "n_params": row.n_params,
                "n_tokens": row.n_tokens,
                "flops": row.flops / 3,
                "loss": TRUTH.loss(row.n_params, row.n_tokens) * noise,
                "group": "",
                "run_id": ["new0", "new1", "new2"],
            }
        )
        refit = fit_groups(pd.concat([table, run], ignore_index=True), config=config, bootstrap_config=bootstrap)[""]
        losses = [float(s.loss_at_optimum(1e21)) for s in refit.samples]
        widths.append(np.diff(np.percentile(losses, [2.5, 97.5]))[0])
    assert widths[0] < 0.7 * widths[1]
