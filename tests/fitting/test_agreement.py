"""Agreement of the exponent a across approaches: intervals, non-overlapping pairs, and the causes the data show."""

import json

import numpy as np
import pandas as pd

from scaling_lab.budget import FlopsPerToken
from scaling_lab.fitting.agreement import Cause, cubic_term_p_value, detected_causes
from scaling_lab.fitting.approach2 import Approach2Config
from scaling_lab.fitting.approach3 import Approach3Config
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.laws import CHINCHILLA_APPROACH3 as TRUTH
from scaling_lab.fitting.run import ExtrapolationConfig, FitConfig, fit_input, write_outputs
from scaling_lab.fitting.seeds import average_points, seed_spread
from scaling_lab.fitting.synthetic import isoflop_table
from scaling_lab.fitting.table import FitInput

PER_TOKEN = FlopsPerToken(accounting="exact", overhead=89.45, exponent=0.66)
"""C/D of the quickstart's shapes against N: the tables below are isoFLOP designs in exact FLOPs."""
BUDGETS = np.geomspace(1e11, 1e14, 6)


def design(*, exponent: float, span: float, noise: float, budgets=BUDGETS, seeds=(0,), offset=1.0) -> pd.DataFrame:
    """7 sizes per exact-FLOP budget over ±span decades, centred on offset·N_opt(C_0)·(C/C_0)^exponent: a design
    exponent above the truth's (~0.45) samples the larger budgets ever further right of their optimum, where L(N)
    along an isoFLOP line is skewed, and the slices' parabola minima drift with C. More than one seed repeats every
    point with fresh noise (``seed`` 0, 1, ...)."""
    centres = offset * float(TRUTH.n_opt(budgets[0], PER_TOKEN)) * (budgets / budgets[0]) ** exponent
    offsets = np.log10(centres / TRUTH.n_opt(budgets, PER_TOKEN))
    tables = [isoflop_table(TRUTH, budgets=budgets, sizes_per_budget=7, span_decades=span, noise=noise, seed=seed,
                            offset_decades=offsets, per_token=PER_TOKEN).assign(seed=seed)
              for seed in seeds]  # fmt: skip
    return pd.concat(tables, ignore_index=True).assign(run_id=lambda t: [f"r{i}" for i in range(len(t))])


def fit(table: pd.DataFrame, curve: str, n_resamples: int = 40, method: str = "multistart"):
    config = FitConfig(approaches=("approach3", "approach2"), approach2=Approach2Config(curve=curve),
                       approach3=Approach3Config(method=method),
                       bootstrap=BootstrapConfig(n_resamples=n_resamples, n_jobs=1),
                       extrapolation=ExtrapolationConfig(holdout_budgets=0))  # fmt: skip
    return fit_input(FitInput(points=table, curves=None, source="synthetic", kind="table"), config)


def test_intervals_that_do_not_overlap_are_flagged_with_the_causes_in_the_data(tmp_path):
    outcome = fit(design(exponent=0.8, span=1.0, noise=0.0005), curve="parabola")
    block = outcome.agreement
    assert block.flops_accounting == "exact" and block.judged
    truth = TRUTH.exponent_over(BUDGETS, PER_TOKEN)  # a of the exact-FLOP frontier at these budgets
    low, high = block.exponents["approach3"].interval
    assert low <= truth <= high
    assert block.exponents["approach2"].interval[0] > high  # the parabola minima drift: a biased upwards
    (pair,) = block.disagreements
    assert pair.pair == ("approach3", "approach2") and "skewed_profiles" in pair.causes
    assert "do not overlap" in pair.line and "skewed profiles (" in pair.line
    fit_path, report_path = write_outputs(outcome, tmp_path)
    assert json.loads(fit_path.read_text())["agreement"]["disagreements"][0]["line"] == pair.line
    report = report_path.read_text().splitlines()
    assert "[[Agreement: N_opt ∝ C^a, C in exact FLOPs, bootstrap intervals]]" in report
    assert [line for line in report if line.startswith("    DISAGREE: ")] == [f"    DISAGREE: {pair.line}"]


def test_intervals_that_overlap_are_not_flagged():
    block = fit(design(exponent=0.45, span=0.6, noise=0.005), curve="cubic", method="vpnls").agreement
    truth = TRUTH.exponent_over(BUDGETS, PER_TOKEN)
    for name in ("approach3", "approach3_vpnls", "approach2"):
        low, high = block.exponents[name].interval
        assert low <= truth <= high, name
    assert block.judged and block.disagreements == ()
    assert "    every pair of intervals overlaps" in block.report().splitlines()


def test_without_a_bootstrap_agreement_is_not_judged():
    block = fit(design(exponent=0.45, span=0.6, noise=0.005), curve="cubic", n_resamples=0).agreement
    assert not block.judged and block.exponents["approach2"].interval is None
    assert block.exponents["approach2"].level is None and block.to_dict()["exponents"]["approach2"]["ci95"] is None
    assert any("not judged" in line for line in block.report().splitlines())


def test_the_cubic_term_test_separates_skewed_from_parabolic_profiles():
    log_n = np.linspace(-1.0, 1.0, 7)
    assert cubic_term_p_value(log_n, 2.0 + 0.3 * log_n**2) > 0.5  # an exact parabola: rounding-size cubic term
    rng = np.random.default_rng(0)
    skewed = 2.0 + 0.3 * log_n**2 + 0.05 * log_n**3 + 0.001 * rng.standard_normal(7)
    assert cubic_term_p_value(log_n, skewed) < 0.01


def test_few_budgets_edge_minima_and_seed_noise_are_detected_from_the_table():
    config = Approach2Config()
    causes = {c.cause for c in detected_causes(design(exponent=0.45, span=0.6, noise=0.005), {}, config)}
    assert causes == set()  # 6 budgets over 3 decades, centred slices, no seeds: nothing to explain a disagreement
    few = design(exponent=0.45, span=0.6, noise=0.005, budgets=np.geomspace(1e11, 1e12, 3))
    assert {c.cause for c in detected_causes(few, {}, config)} == {"few_budgets"}
    off_centre = design(exponent=0.45, span=0.6, noise=0.005, offset=6.0)  # every optimum below the smallest size
    assert {c.cause for c in detected_causes(off_centre, {}, config)} == {"edge_minimum"}

    def seed_causes(noise: float) -> list[Cause]:  # two seeds per point, the fit's mean over them and their spread
        replicates = design(exponent=0.45, span=0.6, noise=noise, seeds=(0, 1))
        std = seed_spread(replicates, config.budget_rtol)["std_mean"]
        return [c for c in detected_causes(average_points(replicates), {}, config, std) if c.cause == "seed_noise"]

    (seed,) = seed_causes(0.05)
    assert {"approach3", "approach2", "approach1"} <= set(seed.applies_to) and "seed-to-seed std" in seed.detail
    assert seed_causes(1e-5) == []
