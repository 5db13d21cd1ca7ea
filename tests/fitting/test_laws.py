import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from scaling_lab.budget import FlopsPerToken
from scaling_lab.fitting.laws import BESIROGLU_2024, CHINCHILLA_APPROACH3, ChinchillaLaw


@pytest.mark.parametrize("law", [CHINCHILLA_APPROACH3, BESIROGLU_2024])
@pytest.mark.parametrize("flops", [1e18, 5.88e23, 1e25])
def test_frontier_matches_numerical_minimum_on_the_isoflop_line(law, flops):
    # Minimize L(N, C/(6N)) over log N numerically and compare with the closed form.
    result = minimize_scalar(
        lambda log_n: law.loss(np.exp(log_n), flops / (6 * np.exp(log_n))),
        bounds=(np.log(1e3), np.log(1e15)),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert np.exp(result.x) == pytest.approx(law.n_opt(flops), rel=1e-4)
    assert law.n_opt(flops) * law.d_opt(flops) * 6 == pytest.approx(flops, rel=1e-12)


def test_exponents_sum_to_one_and_follow_alpha_beta():
    law = ChinchillaLaw(E=1.0, A=100.0, B=200.0, alpha=0.3, beta=0.2)
    assert law.a == pytest.approx(0.4)
    assert law.b == pytest.approx(0.6)


def test_frontier_scale_against_hand_computation():
    # G = (alpha A / (beta B))^(1/(alpha+beta)) for Chinchilla's approach 3 (Hoffmann et al. 2022, eq. 4):
    # (0.34 * 406.4 / (0.28 * 410.7)) ** (1 / 0.62) = 1.20158... ** 1.61290... = 1.34471...
    assert CHINCHILLA_APPROACH3.G == pytest.approx((0.34 * 406.4 / (0.28 * 410.7)) ** (1 / 0.62), rel=1e-12)
    assert CHINCHILLA_APPROACH3.G == pytest.approx(1.3447, abs=1e-4)


def test_roundtrip_and_validation():
    assert ChinchillaLaw.from_dict(BESIROGLU_2024.to_dict()) == BESIROGLU_2024
    with pytest.raises(ValueError, match="alpha"):
        ChinchillaLaw(E=1.0, A=1.0, B=1.0, alpha=-0.1, beta=0.2)


# FLOPs per token of the quickstart's shapes (two layers, widths 8-48, bytes), as fit_flops_per_token finds it:
# 1.3-1.8x 6N over the sampled sizes, tending to 6N at large N.
QUICKSTART_PER_TOKEN = FlopsPerToken(accounting="exact", overhead=89.45, exponent=0.66)


def _brute_force_n_opt(law, flops, per_token):
    """argmin over a dense log grid (2e-6 in log N) of L(N, C/per_token(N)), around the 6ND optimum."""
    centre = np.log(law.n_opt(flops))
    log_n = np.linspace(centre - 1.5, centre + 1.5, 1_500_001)
    n = np.exp(log_n)
    return float(n[np.argmin(law.loss(n, flops / per_token(n)))])


@pytest.mark.parametrize("law", [CHINCHILLA_APPROACH3, BESIROGLU_2024])
@pytest.mark.parametrize("flops", [1e11, 1e14, 5.88e23])
def test_exact_flop_frontier_is_the_minimum_along_exact_isoflop_lines(law, flops):
    per_token = QUICKSTART_PER_TOKEN
    n_opt = float(law.n_opt(flops, per_token))
    assert n_opt == pytest.approx(_brute_force_n_opt(law, flops, per_token), rel=3e-6)
    d_opt = float(law.d_opt(flops, per_token))
    assert float(per_token(n_opt)) * d_opt == pytest.approx(flops, rel=1e-12)  # on the exact isoFLOP line
    assert float(law.loss_at_optimum(flops, per_token)) == pytest.approx(float(law.loss(n_opt, d_opt)), rel=1e-14)
    # The inverses land on the same budget.
    assert float(law.flops_for_n_opt(n_opt, per_token)) == pytest.approx(flops, rel=1e-9)
    assert float(law.flops_for_d_opt(d_opt, per_token)) == pytest.approx(flops, rel=1e-9)


def test_exact_flop_frontier_differs_from_6nd_and_reduces_to_it():
    law, flops = CHINCHILLA_APPROACH3, 1e11
    exact_tokens = float(law.d_opt(flops, QUICKSTART_PER_TOKEN))
    assert float(law.d_opt(flops)) / exact_tokens > 1.3  # 6ND gives 1.3x too many tokens at quickstart scale
    # The bisection path with an overhead too small to matter gives the closed form.
    almost_6nd = FlopsPerToken(accounting="exact", overhead=1e-300, exponent=0.5)
    budgets = np.array([1e15, 1e20, 1e25])
    assert law.n_opt(budgets, almost_6nd) == pytest.approx(law.n_opt(budgets), rel=1e-10)
    assert law.exponent_over(budgets) == law.a  # 6ND: the law's a, exactly
    assert law.exponent_over(budgets, almost_6nd) == pytest.approx(law.a, rel=1e-9)
