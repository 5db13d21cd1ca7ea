"""Estimates and the typed fit results: intervals at the bootstrap's own level, fit.json written from the objects and
read back into them (the stored reference study's schema-1 file included), planning from a fit in memory."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from scaling_lab.budget import SIX_ND
from scaling_lab.errors import TableError
from scaling_lab.fitting.bootstrap import BootstrapConfig, percentile_interval
from scaling_lab.fitting.estimate import Estimate, estimates_of, intervals_of
from scaling_lab.fitting.laws import CHINCHILLA_APPROACH3
from scaling_lab.fitting.run import ExtrapolationConfig, FitConfig, FitOutcome, fit_input, fit_json, write_outputs
from scaling_lab.fitting.synthetic import curves_table, isoflop_table
from scaling_lab.fitting.table import TableConfig, load_input
from scaling_lab.planning import BudgetQuery, LoadedLaw, load_law, plan_budget

STUDY = Path(__file__).parents[2] / "data" / "reference_cpu"


def test_an_estimate_carries_the_interval_at_the_level_it_was_computed():
    samples = np.linspace(1.0, 2.0, 101)
    estimate = Estimate.from_samples(1.5, [*samples, math.nan, math.inf], 0.8)
    assert estimate.level == 0.8 and estimate.interval == percentile_interval(samples, 0.8)
    assert estimate.interval == pytest.approx((1.1, 1.9)) and estimate.format(".3g") == "1.5 [1.1, 1.9]"
    bare = Estimate(2.0)
    assert bare.level is None and bare.interval is None and bare.format() == "2" and bare.interval_text() == ""
    failed = Estimate.from_samples(2.0, [math.nan], 0.95)  # an interval was asked for, no sample was finite
    assert failed.level == 0.95 and failed.interval is None and failed.format() == "2"


def test_intervals_are_written_as_fit_json_pairs_and_read_back():
    estimates = {"a": Estimate(0.5, 0.4, 0.6, 0.9), "b": Estimate(0.5, math.nan, math.nan, 0.9)}
    written = json.loads(json.dumps(intervals_of(estimates)).replace("NaN", "null"))
    assert written == {"a": [0.4, 0.6], "b": [None, None]}
    read = estimates_of({"a": 0.5, "b": 0.5}, ("a", "b"), written, 0.9)
    assert read["a"] == estimates["a"] and read["b"].interval is None and read["b"].level == 0.9
    assert intervals_of({"a": Estimate(0.5)}) is None  # no bootstrap: no ci95 object


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> FitOutcome:
    """Every approach on a synthetic isoFLOP grid with loss curves beside it, bootstrapped at a 90 % level."""
    folder = tmp_path_factory.mktemp("table")
    isoflop_table(CHINCHILLA_APPROACH3, budgets=np.geomspace(1e18, 1e21, 6), noise=0.005, seed=1).to_csv(
        folder / "t.csv", index=False
    )
    curves_table(CHINCHILLA_APPROACH3, sizes=np.geomspace(1e7, 1e9, 7), points_per_curve=12).to_csv(
        folder / "t_curves.csv", index=False
    )
    config = FitConfig(bootstrap=BootstrapConfig(n_resamples=8, n_jobs=1, level=0.9),
                       extrapolation=ExtrapolationConfig(holdout_budgets=0))  # fmt: skip
    return fit_input(load_input(folder / "t.csv", TableConfig()), config)


def test_every_estimate_of_a_fit_states_the_bootstrap_level(outcome: FitOutcome):
    r3 = outcome.results["approach3"]
    assert r3.level == 0.9 and r3.a.level == 0.9 and all(point.n_opt.level == 0.9 for point in r3.frontier)
    for name, result in outcome.results.items():
        if name != "kaplan":
            assert result.a.level == 0.9, name
    assert all(law.alpha.level == 0.9 for law in outcome.results["kaplan"].laws.values())
    assert outcome.to_dict()["approach3"]["ci_level"] == 0.9


def test_fit_json_round_trips_through_the_objects(outcome: FitOutcome, tmp_path: Path):
    assert set(outcome.results) == {"approach3", "approach2", "approach1", "kaplan"}
    fit_path, report_path = write_outputs(outcome, tmp_path)
    text = fit_path.read_text()
    restored = FitOutcome.from_dict(json.loads(text))
    assert restored.results == outcome.results and restored.agreement == outcome.agreement
    assert fit_json(restored) == text and restored.report() == report_path.read_text()


def test_the_stored_reference_fit_reads_back_to_the_same_file_and_report():
    """data/reference_cpu/fit.json was written by an earlier sl-fit (schema 1): read into the objects, it writes
    itself again byte for byte, and the objects' report is the stored report.txt (plus the loss-column line that
    sl-fit's report gained after the file was written)."""
    text = (STUDY / "fit.json").read_text()
    restored = FitOutcome.from_dict(json.loads(text))
    assert fit_json(restored) == text
    added = "    loss column  = loss (nats/token; on a store: the eval suite's union)"
    report = restored.report().splitlines()
    assert added in report
    report.remove(added)
    assert report == (STUDY / "report.txt").read_text().splitlines()
    r3, r2 = restored.results["approach3"], restored.results["approach2"]
    stored = json.loads(text)
    assert r3.estimates.alpha.value == stored["approach3"]["alpha"]
    assert r3.estimates.alpha.interval == tuple(stored["approach3"]["ci95"]["alpha"])
    assert r2.a.interval == tuple(stored["approach2"]["ci95"]["a"]) and r2.a.level == stored["bootstrap"]["level"]


def test_an_older_fit_json_without_levels_or_flop_accounting_reads_as_95_percent_and_6nd():
    old = json.loads((STUDY / "fit.json").read_text())
    for key in ("flops_accounting", "flops_per_token", "schema_version"):
        old.pop(key)
    old["bootstrap"].pop("level")
    for key in ("ci_level", "flops_per_token", "frontier", "vpnls"):
        old["approach3"].pop(key, None)
    restored = FitOutcome.from_dict(old)
    r3 = restored.results["approach3"]
    assert r3.level == 0.95 and r3.flops_per_token == SIX_ND and r3.frontier == ()
    assert restored.results["approach2"].a.level == 0.95
    assert restored.results["approach3"].law == FitOutcome.from_dict(json.loads((STUDY / "fit.json").read_text())
                                                                    ).results["approach3"].law  # fmt: skip


def test_a_newer_schema_is_refused_naming_the_version():
    newer = {**json.loads((STUDY / "fit.json").read_text()), "schema_version": 2}
    with pytest.raises(TableError, match="schema_version=2"):
        FitOutcome.from_dict(newer)


def test_planning_from_the_fit_in_memory_equals_planning_from_its_fit_json(outcome: FitOutcome, tmp_path: Path):
    fit_path, _ = write_outputs(outcome, tmp_path)
    query = BudgetQuery(flops=1e21)
    in_memory = LoadedLaw.from_outcome(outcome, source=str(fit_path))
    from_file = load_law(fit_path)
    assert in_memory == from_file
    assert plan_budget(in_memory, query) == plan_budget(from_file, query)
    plan = plan_budget(in_memory, query)
    assert plan.n_params.level == 0.95 and plan.n_params.interval is not None  # the planner's own 95 % interval
