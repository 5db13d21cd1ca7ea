"""The data-mixing law (Ye et al. 2024) recovers known parameters from synthetic mixes and finds the best mixture."""

from __future__ import annotations

import numpy as np
import pytest

from scaling_lab.errors import FitError
from scaling_lab.planning.mixing import MixingLaw, best_mixture, fit_mixing_law, leave_one_out

TRUE = MixingLaw(target="code", domains=("code", "prose"), c=0.9, k=1.6, t=(-2.5, 0.0), n_mixes=0, rms_residual=0.0)


def mixes(shares):
    return [{"code": share, "prose": 1.0 - share} for share in shares]


def test_two_domain_law_recovered_from_noisy_mixes():
    rng = np.random.default_rng(0)
    shares = np.linspace(0.0, 1.0, 9)
    losses = [TRUE.predict(mix) * (1 + rng.normal(0, 0.002)) for mix in mixes(shares)]
    law = fit_mixing_law(mixes(shares), losses, target="code")
    assert law.domains == ("code", "prose") and law.t[-1] == 0.0
    assert law.c == pytest.approx(0.9, abs=0.1) and law.t[0] == pytest.approx(-2.5, abs=0.4)
    for mix in mixes([0.15, 0.65]):  # mixes not fitted
        assert law.predict(mix) == pytest.approx(TRUE.predict(mix), rel=0.005)
    assert law.rms_residual < 0.01


def test_exact_law_through_four_mixes_and_leave_one_out():
    shares = [0.0, 0.5, 0.8, 1.0]
    losses = [TRUE.predict(mix) for mix in mixes(shares)]
    law = fit_mixing_law(mixes(shares), losses, target="code")
    assert law.predict({"code": 0.2, "prose": 0.8}) == pytest.approx(TRUE.predict({"code": 0.2, "prose": 0.8}), 1e-4)
    assert max(abs(e) for e in leave_one_out(mixes(shares), losses, target="code")) < 0.01


def test_three_domains_and_the_gauge():
    true = MixingLaw(target="all", domains=("a", "b", "c"), c=1.0, k=0.5, t=(1.0, -1.5, 0.0), n_mixes=0,
                     rms_residual=0.0)  # fmt: skip
    rng = np.random.default_rng(1)
    points = [dict(zip("abc", rng.dirichlet([1, 1, 1]), strict=True)) for _ in range(12)]
    law = fit_mixing_law(points, [true.predict(p) for p in points], target="all")
    check = {"a": 0.2, "b": 0.5, "c": 0.3}
    assert law.predict(check) == pytest.approx(true.predict(check), rel=1e-4)


def test_best_mixture_minimises_the_weighted_laws():
    prose = MixingLaw(target="prose", domains=("code", "prose"), c=1.0, k=1.0, t=(2.0, 0.0), n_mixes=4,
                      rms_residual=0.0)  # fmt: skip
    code = MixingLaw(target="code", domains=("code", "prose"), c=0.5, k=1.5, t=(-2.0, 0.0), n_mixes=4,
                     rms_residual=0.0)  # fmt: skip
    shares, loss = best_mixture([prose, code])
    # d/dr [e^{2r} + 1.5 e^{-2r}] = 0 at r = ln(1.5) / 4
    assert shares["code"] == pytest.approx(np.log(1.5) / 4, abs=1e-3)
    assert loss == pytest.approx((prose.predict(shares) + code.predict(shares)) / 2)


def test_bad_inputs_say_what_to_change():
    with pytest.raises(FitError, match=r"2 mixes cannot fit 3 parameters: train more"):
        fit_mixing_law(mixes([0.0, 1.0]), [1.0, 2.0], target="code")
    with pytest.raises(FitError, match=r"span one domain"):
        fit_mixing_law([{"code": 1.0}] * 4, [1.0] * 4, target="code")
    with pytest.raises(FitError, match=r"not among the fitted ones"):
        TRUE.predict({"web": 1.0})
