"""The comparison logic of sl-verify on stored tables: predictions from a fit.json payload, a measured slice with a
known minimum, and the verdicts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scaling_lab.budget import FlopsPerToken
from scaling_lab.errors import FitError, TableError
from scaling_lab.fitting.estimate import Estimate
from scaling_lab.fitting.laws import ChinchillaLaw
from scaling_lab.fitting.verify import (
    Prediction,
    compare,
    measure,
    planned_sizes,
    predict,
    read_fit,
)

LAW = ChinchillaLaw(E=1.8, A=400.0, B=600.0, alpha=0.35, beta=0.3)


def slice_table(n_opt: float, sizes: np.ndarray, *, spread: float = 0.01, seeds: int = 2) -> pd.DataFrame:
    """Profiles that ARE parabolas in log N with their minimum (loss 3.0) at n_opt; seeds scatter symmetrically
    (±spread) about it, so the seed means lie exactly on the parabola."""
    rows = []
    for n in sizes:
        loss = 3.0 + 0.2 * np.log(n / n_opt) ** 2
        for seed in range(seeds):
            rows.append({"n_params": n, "loss": loss + spread * (1 if seed % 2 else -1), "seed": seed})
    return pd.DataFrame(rows)


def test_measure_recovers_a_known_minimum():
    measured = measure(slice_table(3e4, np.geomspace(1e4, 1e5, 5)), "parabola")
    assert measured.bracketed and measured.n_opt == pytest.approx(3e4, rel=1e-9)
    assert measured.best_loss == pytest.approx(3.0, abs=1e-9)
    assert measured.best_loss_method == "profile minimum"
    assert [s["n_seeds"] for s in measured.sizes] == [2] * 5
    assert measured.sizes[0]["loss_std"] == pytest.approx(0.01 * np.sqrt(2), rel=1e-9)  # ±0.01 about the mean
    # each seed alone is the parabola shifted by a constant: the same minimum
    assert measured.seed_n_opt == {"0": pytest.approx(3e4, rel=1e-9), "1": pytest.approx(3e4, rel=1e-9)}


def test_measure_with_approach_2s_akima_interpolant():
    measured = measure(slice_table(3e4, np.geomspace(1e4, 1e5, 5)), "akima")
    assert measured.curve == "akima" and measured.bracketed
    assert measured.n_opt == pytest.approx(3e4, rel=0.05) and measured.best_loss == pytest.approx(3.0, abs=2e-3)


def test_an_unbracketed_minimum_falls_back_to_the_lowest_mean_and_says_so():
    sizes = np.geomspace(1e3, 1e4, 3)
    measured = measure(slice_table(1e5, sizes), "parabola")
    assert not measured.bracketed and measured.n_opt is None and measured.n_opt_side == "above"
    assert measured.best_loss == pytest.approx(3.0 + 0.2 * np.log(1e4 / 1e5) ** 2, abs=1e-9)
    assert measured.best_loss_method.startswith("lowest mean") and "above" in measured.best_loss_method
    two = measure(slice_table(3e4, np.array([1e4, 2e4])), "parabola")
    assert two.curve is None and "cannot fit a parabola" in two.best_loss_method


def _prediction(n_opt: float, ci: tuple[float, float] | None, loss: float | None = 3.3) -> Prediction:
    estimate = Estimate(n_opt) if ci is None else Estimate(n_opt, *ci, 0.95)
    return Prediction(approach="approach2", n_opt=estimate, loss=None if loss is None else Estimate(loss),
                      loss_method="x", level=0.95)  # fmt: skip


def test_compare_gives_the_loss_error_and_whether_n_opt_is_inside():
    measured = measure(slice_table(3e4, np.geomspace(1e4, 1e5, 5)), "parabola")
    verdict = compare({"approach3": _prediction(2.5e4, (2e4, 4e4)), "approach2": _prediction(1e4, (8e3, 1.2e4)),
                       "approach1": _prediction(3e4, None, loss=None)}, measured)  # fmt: skip
    assert verdict["approach3"]["n_opt_inside"] is True
    assert verdict["approach3"]["loss_rel_error"] == pytest.approx(0.1)  # 3.3 against 3.0
    assert verdict["approach3"]["n_opt_ratio"] == pytest.approx(2.5e4 / 3e4)
    assert verdict["approach2"]["n_opt_inside"] is False
    assert verdict["approach1"] == {"loss_rel_error": None, "n_opt_ratio": pytest.approx(1.0), "n_opt_inside": None}
    # an optimum beyond the largest size: outside an interval wholly below it, undecided for one reaching past it
    above = measure(slice_table(1e5, np.geomspace(1e3, 1e4, 3)), "parabola")
    verdict = compare({"approach3": _prediction(5e3, (4e3, 6e3)), "approach2": _prediction(5e3, (4e3, 3e4))}, above)
    assert verdict["approach3"]["n_opt_inside"] is False and verdict["approach2"]["n_opt_inside"] is None


def _fit(**blocks) -> dict:
    return {"n_params_column": "n_params_total", "flops_column": "flops_6nd", "max_flops": 1e17, **blocks}


def test_approach3_n_opt_on_6nd_is_the_closed_form_and_samples_give_an_interval():
    samples = [{**LAW.to_dict(), "alpha": LAW.alpha * f} for f in (0.97, 0.99, 1.01, 1.03)]
    fit = _fit(approach3={**LAW.to_dict(), "bootstrap_samples": samples, "ci_level": 0.9})
    predictions, skipped = predict(fit, 1e18, source="fit.json")
    p = predictions["approach3"]
    assert p.n_opt.value == pytest.approx(float(LAW.n_opt(1e18)), rel=1e-4)
    assert p.loss.value == pytest.approx(float(LAW.loss_at_optimum(1e18)), rel=1e-8)
    sample_n = [float(ChinchillaLaw.from_dict(s).n_opt(1e18)) for s in samples]
    assert p.n_opt.interval[0] == pytest.approx(np.percentile(sample_n, 5), rel=1e-3)
    assert p.n_opt.interval[1] == pytest.approx(np.percentile(sample_n, 95), rel=1e-3)
    assert p.level == 0.9 and p.n_opt.level == 0.9 and set(skipped) == {"approach2", "approach1"}


def test_approach3_n_opt_follows_the_fits_own_flop_accounting():
    # FLOPs per token with an attention-and-vocabulary overhead, as the exact count has: the optimum moves, and
    # the prediction is the shared solver's (tests/fitting/test_laws.py checks that against a brute-force minimum)
    per_token = FlopsPerToken(accounting="exact", overhead=4e3, exponent=0.5)
    samples = [{**LAW.to_dict(), "alpha": LAW.alpha * f} for f in (0.97, 0.99, 1.01, 1.03)]
    fit = _fit(approach3={**LAW.to_dict(), "bootstrap_samples": samples}, flops_per_token=per_token.to_dict())
    p = predict(fit, 1e15, source="fit.json")[0]["approach3"]
    assert p.n_opt.value == pytest.approx(float(LAW.n_opt(1e15, per_token)), rel=1e-9)
    assert p.loss.value == pytest.approx(float(LAW.loss_at_optimum(1e15, per_token)), rel=1e-9)
    sample_n = [float(ChinchillaLaw.from_dict(s).n_opt(1e15, per_token)) for s in samples]
    assert p.n_opt.interval == pytest.approx(tuple(np.percentile(sample_n, [2.5, 97.5])), rel=1e-9)
    assert abs(p.n_opt.value / float(LAW.n_opt(1e15)) - 1) > 0.05  # not the 6ND answer
    # the accounting is read from fit.json alone: a malformed one is refused naming the file
    with pytest.raises(TableError, match=r"fit\.json: flops_per_token"):
        predict({**fit, "flops_per_token": {"accounting": "exact", "overhead": "many"}}, 1e15, source="fit.json")


def test_frontier_approaches_use_k_n_c_to_the_a_and_forecast_loss_by_a_power_law():
    budgets = [{"flops": c, "loss_opt": 5.0 * c**-0.05, "used": True} for c in (1e15, 1e16, 1e17)]
    samples = [{"k_n": 0.1, "a": a, "b": 0.5, "k_d": 1.0} for a in (0.48, 0.5, 0.52)]
    fit = _fit(approach2={"a": 0.5, "k_n": 0.1, "budgets": budgets, "bootstrap_samples": samples},
               approach1={"a": 0.5, "k_n": 0.1, "envelope": [{"flops": 1e15, "loss": 3.0}]})  # fmt: skip
    predictions, _ = predict(fit, 1e18, source="fit.json")
    assert predictions["approach2"].n_opt.value == pytest.approx(0.1 * 1e9)
    assert predictions["approach2"].loss.value == pytest.approx(5.0 * 1e18**-0.05, rel=1e-9)
    assert predictions["approach2"].loss.interval is None  # a power law through the minima has no interval
    low, high = predictions["approach2"].n_opt.interval
    assert low == pytest.approx(np.percentile([0.1 * 1e18**a for a in (0.48, 0.5, 0.52)], 2.5))
    assert high > 0.1 * 1e9 > low
    assert predictions["approach1"].loss is None and predictions["approach1"].n_opt.interval is None  # one budget


def test_points_sl_fit_wrote_as_null_are_left_out_of_the_loss_forecast():
    budgets = [{"flops": c, "loss_opt": 5.0 * c**-0.05, "used": True} for c in (1e15, 1e16)]
    budgets += [{"flops": 1e17, "loss_opt": None, "used": True}, {"flops": 1e14, "loss_opt": 9.0, "used": False}]
    p = predict(_fit(approach2={"a": 0.5, "k_n": 0.1, "budgets": budgets}), 1e18, source="fit.json")[0]["approach2"]
    assert p.loss.value == pytest.approx(5.0 * 1e18**-0.05, rel=1e-9)


def test_a_fit_without_an_n_opt_is_refused():
    with pytest.raises(FitError, match="no approach with an N_opt"):
        predict(_fit(kaplan={"laws": {}}, skipped={"approach3": "too few points"}), 1e18, source="f.json")


def test_read_fit_names_the_file(tmp_path):
    with pytest.raises(TableError, match=r"absent\.json"):
        read_fit(tmp_path / "absent.json")
    (tmp_path / "fit.json").write_text(json.dumps(_fit()))
    assert read_fit(tmp_path)[1] == tmp_path / "fit.json"  # a folder holding one


def test_planned_sizes_span_the_intervals_and_widen_a_narrow_one():
    wide = {"approach3": _prediction(2e4, (1e4, 3e4)), "approach2": _prediction(5e4, (4e4, 8e4))}
    assert planned_sizes(wide, 3, 2.0) == pytest.approx([1e4, np.sqrt(1e4 * 8e4), 8e4])
    narrow = {"approach3": _prediction(2e4, (1.9e4, 2.1e4))}
    sizes = planned_sizes(narrow, 3, 2.0)
    assert sizes[1] / sizes[0] == pytest.approx(2.0) and sizes[2] / sizes[1] == pytest.approx(2.0)
    assert np.sqrt(sizes[0] * sizes[2]) == pytest.approx(np.sqrt(1.9e4 * 2.1e4))
    # a margin reaches past the outermost ends on both sides, about the same centre
    assert planned_sizes(wide, 3, 2.0, margin=1.5) == pytest.approx([1e4 / 1.5, np.sqrt(1e4 * 8e4), 8e4 * 1.5])
