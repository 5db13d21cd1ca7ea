"""Over many seeds, 95 % bootstrap intervals cover the true parameters (lmfit-style recovery test)."""

import numpy as np
import pytest

from scaling_lab.fitting.approach2 import fit_approach2
from scaling_lab.fitting.approach3 import Approach3Config, fit_approach3
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.laws import CHINCHILLA_APPROACH3 as TRUTH
from scaling_lab.fitting.synthetic import isoflop_table

N_SEEDS = 40
N_RESAMPLES = 200


@pytest.mark.slow
def test_95_percent_intervals_cover_the_truth_in_at_least_90_percent_of_seeds():
    covered = {name: 0 for name in ("alpha", "beta", "a", "E")}
    for seed in range(N_SEEDS):
        table = isoflop_table(TRUTH, budgets=np.geomspace(1e18, 1e21, 6), noise=0.01, seed=1000 + seed)
        result = fit_approach3(table, Approach3Config(), BootstrapConfig(n_resamples=N_RESAMPLES, seed=seed))
        for name in covered:
            low, high = getattr(result.estimates, name).interval
            covered[name] += low <= getattr(TRUTH, name) <= high
    rates = {name: count / N_SEEDS for name, count in covered.items()}
    assert all(rate >= 0.90 for rate in rates.values()), rates


@pytest.mark.slow
def test_approach2_residual_bootstrap_covers_the_true_exponent(parabolic_table):
    covered = failed = 0
    for seed in range(N_SEEDS):
        result = fit_approach2(
            parabolic_table(seed), bootstrap_config=BootstrapConfig(n_resamples=N_RESAMPLES, seed=seed, n_jobs=1)
        )
        low, high = result.a.interval
        covered += low <= 0.5 <= high
        failed += result.n_bootstrap_failed
    # measured: 37/40 covered, 0 of 8000 resamples failed
    assert covered / N_SEEDS >= 0.85 and failed == 0
