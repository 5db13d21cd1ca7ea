"""The stored reference CPU study (data/reference_cpu/): sl-verify's comparison logic and the fitter, replayed on
real measurements. Each test recomputes from the stored inputs what the stored outputs say, so a change to the
predictions, the measured profile, the verdicts or approach 3's optimiser shows up here as a changed number."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from scaling_lab.fitting.approach2 import Approach2Config
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.run import FitConfig, fit_input
from scaling_lab.fitting.table import TableConfig, load_input
from scaling_lab.fitting.verify import compare, measure, predict

STUDY = Path(__file__).parents[2] / "data" / "reference_cpu"


@pytest.fixture(scope="module")
def fit() -> dict:
    return json.loads((STUDY / "fit.json").read_text())


@pytest.fixture(scope="module")
def verify() -> dict:
    return json.loads((STUDY / "verify.json").read_text())


def test_the_predictions_at_10x_follow_from_the_stored_fit(fit: dict, verify: dict) -> None:
    predictions, _ = predict(fit, verify["target_flops"], source="fit.json")
    assert verify["target_flops"] == pytest.approx(10 * fit["max_flops"], rel=1e-12)
    assert set(predictions) == set(verify["predictions"])
    for name, prediction in predictions.items():
        stored = verify["predictions"][name]
        assert prediction.n_opt.value == pytest.approx(stored["n_opt"], rel=1e-9), name
        assert prediction.n_opt.interval == pytest.approx(stored["n_opt_ci"], rel=1e-9), name
        assert prediction.loss.value == pytest.approx(stored["loss"], rel=1e-9), name
        written = prediction.to_dict()  # verify.json's prediction is written from the object
        assert set(written) == set(stored) and written["level"] == stored["level"], name
        assert written["loss_method"] == stored["loss_method"] and written["n_opt"] == stored["n_opt"], name


def test_the_measured_optimum_and_the_verdicts_follow_from_the_trained_slice(fit: dict, verify: dict) -> None:
    runs = pd.DataFrame(verify["runs"])
    assert len(runs) == len(verify["planned"]) * len(verify["seeds"])  # every planned run finished
    measured = measure(runs, verify["measured"]["curve"] or "parabola")
    assert measured.n_opt == pytest.approx(verify["measured"]["n_opt"], rel=1e-9)
    assert measured.best_loss == pytest.approx(verify["measured"]["best_loss"], rel=1e-12)
    predictions, _ = predict(fit, verify["target_flops"], source="fit.json")
    verdicts = compare(predictions, measured)
    for name, row in verdicts.items():
        stored = verify["comparison"][name]
        assert row["n_opt_inside"] == stored["n_opt_inside"], name
        assert row["loss_rel_error"] == pytest.approx(stored["loss_rel_error"], rel=1e-9, abs=1e-12), name


def test_approaches_2_and_3_refit_the_stored_table_to_the_stored_estimates(fit: dict) -> None:
    """The fit of README's command (exact FLOPs, cubic profiles, seed means), without its bootstrap."""
    data = load_input(STUDY / "table.csv", TableConfig(store_n_params="total", store_flops="exact"))
    config = FitConfig(approaches=("approach3", "approach2"), approach2=Approach2Config(curve="cubic"),
                       bootstrap=BootstrapConfig(n_resamples=0))  # fmt: skip
    results = fit_input(data, config).results
    law = results["approach3"].law
    for name in ("E", "A", "B", "alpha", "beta"):
        assert getattr(law, name) == pytest.approx(fit["approach3"][name], rel=1e-4), name
    assert results["approach2"].a.value == pytest.approx(fit["approach2"]["a"], rel=1e-9)
