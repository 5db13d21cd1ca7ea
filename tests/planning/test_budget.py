import json

import numpy as np
import pytest

from scaling_lab.budget import SIX_ND, FlopsPerToken
from scaling_lab.errors import ConfigError, TableError
from scaling_lab.fitting.laws import BESIROGLU_2024, CHINCHILLA_APPROACH3, ChinchillaLaw
from scaling_lab.planning.budget import BudgetQuery, flops_for_loss, plan_budget
from scaling_lab.planning.laws import KAPLAN_2020, LoadedLaw, load_law, min_params_for_loss, tokens_for_loss

LAWS = [CHINCHILLA_APPROACH3, BESIROGLU_2024, KAPLAN_2020]


def test_chinchilla_closed_form_at_the_papers_budget():
    # Hoffmann et al. 2022 eq. 4 by hand: N_opt = G (C/6)^a with G = (alpha A/(beta B))^(1/(alpha+beta)).
    law, flops = CHINCHILLA_APPROACH3, 5.88e23
    G = (0.34 * 406.4 / (0.28 * 410.7)) ** (1 / 0.62)
    n_opt = G * (flops / 6) ** (0.28 / 0.62)
    plan = plan_budget(LoadedLaw(law=law, source="chinchilla"), BudgetQuery(flops=flops))
    assert plan.n_params.value == pytest.approx(n_opt, rel=1e-12)
    assert plan.n_tokens.value == pytest.approx(flops / (6 * n_opt), rel=1e-12)
    assert plan.loss.value == pytest.approx(1.69 + 406.4 / n_opt**0.34 + 410.7 / (flops / 6 / n_opt) ** 0.28)
    assert np.isnan(plan.n_params.low)


def test_kaplan_frontier_is_the_minimum_on_the_isoflop_line():
    flops = 1e21
    grid = np.logspace(6, 14, 200_001)
    losses = KAPLAN_2020.loss(grid, flops / (6 * grid))
    assert grid[np.argmin(losses)] == pytest.approx(KAPLAN_2020.n_opt(flops), rel=1e-3)
    assert KAPLAN_2020.a == pytest.approx(0.095 / (0.076 + 0.095))


@pytest.mark.parametrize("law", LAWS)
def test_every_query_kind_lands_on_the_same_frontier_point(law):
    loaded = LoadedLaw(law=law, source="x")
    base = plan_budget(loaded, BudgetQuery(flops=3e22))
    for query in (
        BudgetQuery(n_params=base.n_params.value),
        BudgetQuery(n_tokens=base.n_tokens.value),
        BudgetQuery(target_loss=base.loss.value),
    ):
        plan = plan_budget(loaded, query)
        assert plan.flops.value == pytest.approx(3e22, rel=1e-8)
        assert plan.n_params.value == pytest.approx(base.n_params.value, rel=1e-8)


def test_chinchilla_target_loss_against_closed_inverse():
    # On the frontier L = E + K (C/6)^(-alpha beta/(alpha+beta)), K = A G^-alpha + B G^beta
    # (Hoffmann et al. 2022 eq. 4 substituted in eq. 2).
    law = BESIROGLU_2024
    K = law.A * law.G**-law.alpha + law.B * law.G**law.beta
    exponent = law.alpha * law.beta / (law.alpha + law.beta)
    target = 2.1
    flops = 6 * ((target - law.E) / K) ** (-1 / exponent)
    assert flops_for_loss(law, target) == pytest.approx(flops, rel=1e-9)
    with pytest.raises(ConfigError, match="target_loss"):
        flops_for_loss(law, law.E - 0.01)


@pytest.mark.parametrize("law", LAWS)
def test_iso_loss_inverse(law):
    n = min_params_for_loss(law, 2.2) * np.array([1.5, 10.0, 100.0])
    d = tokens_for_loss(law, n, 2.2)
    assert law.loss(n, d) == pytest.approx(np.full(3, 2.2), rel=1e-10)
    assert tokens_for_loss(law, min_params_for_loss(law, 2.2) * 0.99, 2.2) == np.inf


def test_query_needs_exactly_one_input():
    with pytest.raises(ConfigError, match="exactly one"):
        BudgetQuery(flops=1e20, n_params=1e9)
    with pytest.raises(ConfigError, match="n_tokens"):
        BudgetQuery(n_tokens=-1.0)


def _fit_json(tmp_path, samples):
    law = CHINCHILLA_APPROACH3.to_dict()
    payload = {"approach3": law | {"bootstrap_samples": samples}, "n_params_column": "n_params_total"}
    path = tmp_path / "fit.json"
    path.write_text(json.dumps(payload))
    return path


def test_intervals_from_bootstrap_samples_in_fit_json(tmp_path):
    rng = np.random.default_rng(0)
    samples = [
        CHINCHILLA_APPROACH3.to_dict()
        | {"alpha": 0.34 + 0.01 * rng.standard_normal(), "beta": 0.28 + 0.01 * rng.standard_normal()}
        for _ in range(200)
    ]
    loaded = load_law(_fit_json(tmp_path, samples))
    assert loaded.n_params_column == "n_params_total" and len(loaded.samples) == 200
    plan = plan_budget(loaded, BudgetQuery(flops=1e22))
    per_sample = [ChinchillaLaw.from_dict(s).n_opt(1e22) for s in samples]
    assert plan.n_params.low == pytest.approx(np.percentile(per_sample, 2.5))
    assert plan.n_params.high == pytest.approx(np.percentile(per_sample, 97.5))
    assert plan.n_params.low < plan.n_params.value < plan.n_params.high
    assert "200 bootstrap samples" in plan.report()
    given_size = plan_budget(loaded, BudgetQuery(n_params=1e9))
    assert np.isnan(given_size.n_params.low) and given_size.n_tokens.low < given_size.n_tokens.high


def test_load_law_errors_name_the_fix(tmp_path):
    assert load_law("Besiroglu2024").law == BESIROGLU_2024
    with pytest.raises(ConfigError, match="chinchilla, besiroglu2024, kaplan2020"):
        load_law(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"approach1": {}}))
    with pytest.raises(TableError, match="approach3"):
        load_law(tmp_path / "bad.json")
    with pytest.raises(TableError, match=r"bootstrap_samples\[0\]"):
        load_law(_fit_json(tmp_path, [{"E": 1.0}]))


def test_reads_the_fit_json_that_the_fitter_writes(tmp_path):
    # A real fit.json from the fitter's own writer (scaling_lab.fitting.run), not a hand-made one.
    from scaling_lab.fitting.approach3 import Approach3Config
    from scaling_lab.fitting.bootstrap import BootstrapConfig
    from scaling_lab.fitting.run import ExtrapolationConfig, FitConfig, fit_input, fit_json
    from scaling_lab.fitting.synthetic import isoflop_table
    from scaling_lab.fitting.table import FitInput

    truth = ChinchillaLaw(E=1.8, A=400.0, B=1200.0, alpha=0.34, beta=0.36)
    table = isoflop_table(truth, budgets=np.logspace(15, 17, 3), sizes_per_budget=7, noise=0.005, seed=3)
    config = FitConfig(
        approaches=("approach3",),
        approach3=Approach3Config(n_polish=4, bootstrap_n_polish=1),
        bootstrap=BootstrapConfig(n_resamples=20, n_jobs=1),
        extrapolation=ExtrapolationConfig(holdout_budgets=0),
    )
    outcome = fit_input(FitInput(points=table, curves=None, source="synthetic", kind="table"), config)
    (tmp_path / "fit.json").write_text(fit_json(outcome))
    loaded = load_law(tmp_path / "fit.json")
    assert len(loaded.samples) == 20
    plan = plan_budget(loaded, BudgetQuery(flops=1e17))
    assert plan.n_params.low <= plan.n_params.value <= plan.n_params.high
    assert plan.n_params.value == pytest.approx(truth.n_opt(1e17), rel=0.2)


def test_planning_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, scaling_lab.planning, scaling_lab.planning.app; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


QUICKSTART_PER_TOKEN = FlopsPerToken(accounting="exact", overhead=89.45, exponent=0.66)
"""C/D of the quickstart's shapes against N (tests/fitting/test_laws.py)."""


def test_kaplan_frontier_along_exact_flops_is_the_minimum_on_that_line():
    flops = 1e15
    grid = np.exp(np.linspace(np.log(1e5), np.log(1e8), 1_000_001))
    losses = KAPLAN_2020.loss(grid, flops / QUICKSTART_PER_TOKEN(grid))
    assert grid[np.argmin(losses)] == pytest.approx(KAPLAN_2020.n_opt(flops, QUICKSTART_PER_TOKEN), rel=1e-5)


@pytest.mark.parametrize("law", LAWS)
def test_every_query_kind_lands_on_the_same_exact_flop_frontier_point(law):
    loaded = LoadedLaw(law=law, source="x", per_token=QUICKSTART_PER_TOKEN)
    base = plan_budget(loaded, BudgetQuery(flops=3e14))
    assert base.n_params.value == pytest.approx(law.n_opt(3e14, QUICKSTART_PER_TOKEN), rel=1e-12)
    assert base.n_params.value != pytest.approx(law.n_opt(3e14), rel=1e-3)  # not the 6ND answer
    for query in (
        BudgetQuery(n_params=base.n_params.value),
        BudgetQuery(n_tokens=base.n_tokens.value),
        BudgetQuery(target_loss=base.loss.value),
    ):
        plan = plan_budget(loaded, query)
        assert plan.flops.value == pytest.approx(3e14, rel=1e-8)
        assert plan.n_params.value == pytest.approx(base.n_params.value, rel=1e-8)
    assert "compute C (FLOPs, exact)" in base.report()


def test_fit_json_accounting_is_read_and_defaults_to_6nd(tmp_path):
    path = _fit_json(tmp_path, [])
    assert load_law(path).per_token == SIX_ND  # fit.json written before the accounting was recorded
    payload = json.loads(path.read_text()) | {
        "flops_accounting": "exact",
        "flops_per_token": QUICKSTART_PER_TOKEN.to_dict(),
    }
    path.write_text(json.dumps(payload))
    assert load_law(path).per_token == QUICKSTART_PER_TOKEN
    path.write_text(
        json.dumps(payload | {"flops_per_token": {"accounting": "exact", "exponent": -1.0, "overhead": 1.0}})
    )
    with pytest.raises(TableError, match=r"fit\.json: flops_per_token\.exponent=-1"):
        load_law(path)
