"""Budget → tokens → steps, in one place."""

from __future__ import annotations

import warnings

import pytest

from scaling_lab.budget import BudgetConfig, flops_6nd, steps_for_tokens, tokens_for_budget
from scaling_lab.errors import ConfigError


@pytest.mark.parametrize(
    ("kind", "value", "tokens"),
    [("tokens", 1e5, 1e5), ("tokens_per_param", 20, 20_000), ("flops_6nd", 6e9, 1e6), ("flops_exact", 1e9, 1e5)],
)
def test_tokens_for_each_budget_kind(kind: str, value: float, tokens: float) -> None:
    budget = BudgetConfig(kind=kind, value=value)
    assert tokens_for_budget(budget, n_params=1000, flops_per_token_exact=1e4) == pytest.approx(tokens)


def test_steps_round_and_record_realized_tokens() -> None:
    plan = steps_for_tokens(10_000, batch_sequences=4, sequence_length=64)
    assert (plan.steps, plan.tokens_per_step, plan.n_tokens) == (39, 256, 9984)
    assert flops_6nd(1000, plan.n_tokens) == 6 * 1000 * 9984


def test_rounding_by_more_than_a_percent_warns() -> None:
    with pytest.warns(UserWarning, match=r"rounding 1000 tokens to 4 steps"):
        steps_for_tokens(1000, batch_sequences=4, sequence_length=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        steps_for_tokens(100 * 256, batch_sequences=4, sequence_length=64)


def test_batch_larger_than_the_budget_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"less than one batch of 256 tokens.*optim.batch_tokens"):
        steps_for_tokens(100, batch_sequences=4, sequence_length=64)


@pytest.mark.parametrize("value", [0, -5.0, float("nan")])
def test_zero_or_negative_budget_names_the_field(value: float) -> None:
    with pytest.raises(ConfigError, match=r"budget\.value=.* must be a positive number"):
        BudgetConfig(kind="tokens", value=value)


def test_unknown_budget_kind() -> None:
    with pytest.raises(ConfigError, match=r"budget\.kind='steps' is unknown"):
        BudgetConfig(kind="steps", value=10)
