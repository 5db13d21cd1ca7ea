import numpy as np
import pytest

from scaling_lab.errors import ConfigError
from scaling_lab.fitting.laws import BESIROGLU_2024, CHINCHILLA_APPROACH3
from scaling_lab.planning.inference import inference_aware_plan, reference_models_table
from scaling_lab.planning.laws import KAPLAN_2020
from scaling_lab.planning.moe import MoEConfig, moe_sizes


def _brute_force(law, target, inference_tokens):
    # Independent of the iso-loss inverse: a dense (N, D) grid, keep points at or below the target, take the cheapest.
    n, d = np.meshgrid(np.logspace(8, 11.5, 1500), np.logspace(9, 14, 1500), indexing="ij")
    cost = np.where(law.loss(n, d) <= target, 6 * n * d + 2 * n * inference_tokens, np.inf)
    best = np.unravel_index(np.argmin(cost), cost.shape)
    return n[best], d[best], cost[best]


@pytest.mark.parametrize("law", [CHINCHILLA_APPROACH3, BESIROGLU_2024, KAPLAN_2020])
@pytest.mark.parametrize("inference_tokens", [1e11, 2e12, 5e13])
def test_optimum_matches_brute_force_grid(law, inference_tokens):
    plan = inference_aware_plan(law, inference_tokens=inference_tokens, flops=5.88e21)
    n, _, cost = _brute_force(law, plan.target_loss, inference_tokens)
    assert plan.optimal.total_flops <= cost * (1 + 1e-9)
    assert plan.optimal.total_flops == pytest.approx(cost, rel=5e-3)
    assert plan.optimal.n_params == pytest.approx(n, rel=0.05)
    assert law.loss(plan.optimal.n_params, plan.optimal.n_tokens) == pytest.approx(plan.target_loss, rel=1e-10)


def test_no_inference_means_the_compute_optimal_model():
    plan = inference_aware_plan(CHINCHILLA_APPROACH3, inference_tokens=0.0, flops=1e22)
    assert plan.optimal.n_params == pytest.approx(plan.reference.n_params, rel=1e-4)
    assert plan.saving == pytest.approx(0.0, abs=1e-8)
    assert plan.overtraining_factor == pytest.approx(1.0, rel=1e-3)


def test_more_inference_means_smaller_longer_trained_models():
    plans = [inference_aware_plan(BESIROGLU_2024, inference_tokens=t, target_loss=2.2) for t in (1e11, 1e12, 1e13)]
    sizes = [p.optimal.n_params for p in plans]
    factors = [p.overtraining_factor for p in plans]
    assert sizes == sorted(sizes, reverse=True) and factors == sorted(factors)
    assert all(0 < p.saving < 1 for p in plans)
    with pytest.raises(ConfigError, match="exactly one"):
        inference_aware_plan(BESIROGLU_2024, inference_tokens=1e9)


def test_reference_models_table():
    table = reference_models_table(CHINCHILLA_APPROACH3)
    chinchilla = table.loc["Chinchilla 70B"]
    assert chinchilla["tokens/param"] == pytest.approx(20.0)
    assert chinchilla["training FLOPs"] == pytest.approx(5.88e23)
    assert chinchilla["inference FLOPs/token"] == pytest.approx(1.4e11)
    assert chinchilla["predicted loss"] == pytest.approx(CHINCHILLA_APPROACH3.loss(70e9, 1.4e12))
    # No model beats the law's own optimum at its training budget.
    assert (table["predicted loss"] >= table["optimal loss at same C"]).all()


def test_moe_sizes_hand_computed():
    # Mixtral-like: 8 experts, top-2, 2/3 of active params in experts: total = N (1/3 + 2/3 * 8/2) = 3N.
    sizes = moe_sizes(1.2e10, MoEConfig(n_experts=8, experts_per_token=2))
    assert sizes.total_params == pytest.approx(3.0 * 1.2e10)
    assert sizes.expert_params == pytest.approx(1.2e10 * (2 / 3) / 2)
    assert sizes.weight_bytes == pytest.approx(2 * 3.6e10)
    dense = moe_sizes(1e9, MoEConfig(n_experts=1, experts_per_token=1))
    assert dense.total_params == pytest.approx(1e9)
    with pytest.raises(ConfigError, match="experts_per_token"):
        MoEConfig(n_experts=4, experts_per_token=5)
