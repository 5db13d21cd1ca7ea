import numpy as np
import pytest
from scipy.optimize import minimize_scalar

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
