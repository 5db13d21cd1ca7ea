"""The unified MoE law (Clark et al. 2022) recovers known coefficients and multipliers from synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from scaling_lab.errors import TableError
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.moe_law import (
    MoELawConfig,
    MoELawFit,
    fit_moe_law,
    read_moe_law,
    saturated_experts,
    write_moe_laws,
)

TRUE = {"a": -0.08, "b": -0.035, "c": 0.0015, "d": 1.9}


def synthetic(noise: float, seed: int = 0, e_max: float = math.inf) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, e = np.meshgrid(np.geomspace(1e4, 1e6, 6), np.array([1, 4, 8, 16]))
    n, e = n.ravel(), e.ravel()
    log_e = np.log(saturated_experts(e, 1.0, e_max))
    log_loss = TRUE["a"] * np.log(n) + TRUE["b"] * log_e + TRUE["c"] * np.log(n) * log_e + TRUE["d"]
    points = pd.DataFrame({"n_params": n, "n_experts": e, "loss": np.exp(log_loss + noise * rng.normal(size=n.size))})
    points.attrs.update(n_params_column="n_params_active", n_tokens=1e6)
    return points


def true_multiplier(n: float, experts: int) -> float:
    return math.exp((TRUE["b"] + TRUE["c"] * math.log(n)) * math.log(experts) / TRUE["a"])


def test_noise_free_data_gives_the_coefficients_and_multipliers_exactly() -> None:
    law = fit_moe_law(synthetic(0.0))
    for name, value in TRUE.items():
        assert getattr(law, name) == pytest.approx(value, rel=1e-6, abs=1e-9)
    assert float(law.multiplier(1e5, 8)) == pytest.approx(true_multiplier(1e5, 8), rel=1e-6)
    assert float(law.multiplier(1e5, 1)) == pytest.approx(1.0)
    assert law.rmse_log_loss < 1e-9


def test_noisy_data_recovered_within_the_bootstrap_intervals(tmp_path) -> None:
    law = fit_moe_law(synthetic(0.005, seed=3), boot=BootstrapConfig(n_resamples=200, by="point", n_jobs=1))
    assert law.n_resamples == 200
    for name in ("a", "b", "d"):
        low, high = law.intervals[name]
        assert low <= TRUE[name] <= high, (name, law.intervals[name])
    low, high = law.intervals["multiplier_E8"]
    assert low <= true_multiplier(law.reference_n, 8) <= high
    assert law.multipliers["8"] > law.multipliers["4"] > law.multipliers["1"] == pytest.approx(1.0)
    # the written file reads back to the same law, and its report names the multipliers
    write_moe_laws([law], tmp_path / "moe_law.json")
    assert read_moe_law(tmp_path / "moe_law.json") == law
    assert "E=8:" in law.report() and "multiplier" in law.report()


def test_saturation_is_recovered_when_held_at_its_true_value() -> None:
    law = fit_moe_law(synthetic(0.0, e_max=32.0), MoELawConfig(e_max=32.0))
    assert law.b == pytest.approx(TRUE["b"], rel=1e-6)
    assert MoELawFit.from_dict(law.to_dict()) == law


def test_a_design_without_two_expert_counts_is_refused() -> None:
    points = synthetic(0.0)
    with pytest.raises(TableError, match="≥ 2 expert counts"):
        fit_moe_law(points[points["n_experts"] == 8])


def test_sizes_whose_realized_budgets_differ_by_rounding_share_one_law() -> None:
    """Each size rounds a budget to whole steps of its own batch: realized D within 2 % is one D."""
    from scaling_lab.fitting.moe_law import fit_store

    points = synthetic(0.0)
    sizes = sorted(set(points["n_params"]))
    rounding = {n: 1 - 0.003 * i for i, n in enumerate(sizes)}  # up to 1.5 % below the budget asked for
    table = pd.concat([points.assign(n_tokens=points["n_params"].map(rounding) * d) for d in (1e6, 3e6)])
    table = table.rename(columns={"n_params": "n_params_active"})
    laws = fit_store(table, MoELawConfig())
    assert [law.n_points for law in laws] == [len(points), len(points)]  # every size in each of the two budgets
    assert [round(law.n_tokens, -3) for law in laws] == [985_000, 2_955_000]
    assert laws[0].a == pytest.approx(TRUE["a"], abs=1e-9)
