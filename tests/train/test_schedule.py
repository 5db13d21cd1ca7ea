"""Schedules by tables of values and the per-size rules."""

from __future__ import annotations

import pytest

from scaling_lab.config.training import ScheduleConfig
from scaling_lab.errors import ConfigError
from scaling_lab.model import PRESETS
from scaling_lab.train import rules
from scaling_lab.train.schedule import (
    Cooldown,
    constant_lr,
    cosine_lr,
    lr_at,
    wsd_cooldowns,
    wsd_lr,
)


def test_cosine_table() -> None:
    # peak 1, 2 warmup steps, 10 steps, floor 0.1: warmup 0.5, 1; then 0.1 + 0.45·(1 + cos(πk/8)), k = 1..8
    got = [cosine_lr(s, peak=1.0, warmup_steps=2, total_steps=10, final_fraction=0.1) for s in range(10)]
    expected = [0.5, 1.0, 0.96575, 0.86820, 0.72221, 0.55, 0.37779, 0.23180, 0.13425, 0.1]
    assert got == pytest.approx(expected, abs=1e-5)


def test_cosine_table_literal() -> None:
    got = [cosine_lr(s, peak=2.0, warmup_steps=1, total_steps=5, final_fraction=0.1) for s in range(5)]
    assert got == pytest.approx([2.0, 1.7364, 1.1, 0.4636, 0.2], abs=1e-4)


def test_constant_table() -> None:
    assert [constant_lr(s, peak=3.0, warmup_steps=3) for s in range(5)] == pytest.approx([1.0, 2.0, 3.0, 3.0, 3.0])


def test_wsd_table_one_minus_sqrt_and_linear() -> None:
    sqrt = [wsd_lr(s, peak=1.0, warmup_steps=1, cooldown_start=4, cooldown_steps=4, shape="1-sqrt") for s in range(8)]
    assert sqrt == pytest.approx([1, 1, 1, 1, 1 - 0.5, 1 - 0.5**0.5, 1 - 0.75**0.5, 0.0])
    linear = [wsd_lr(s, peak=1.0, warmup_steps=1, cooldown_start=4, cooldown_steps=4, shape="linear") for s in range(8)]
    assert linear == pytest.approx([1, 1, 1, 1, 0.75, 0.5, 0.25, 0.0])


def test_wsd_cooldowns_take_twenty_percent_of_each_length() -> None:
    assert wsd_cooldowns([100, 50, 200], fraction=0.2, warmup_steps=5) == [
        Cooldown(start=40, end=50),
        Cooldown(start=80, end=100),
        Cooldown(start=160, end=200),
    ]
    with pytest.raises(ConfigError, match="inside the 5-step warmup: raise the budget"):
        wsd_cooldowns([5], fraction=0.2, warmup_steps=5)  # the run's own end: nothing to train
    with pytest.warns(UserWarning, match=r"ending at step 5 would start at step 4, inside the 5-step warmup: that"):
        assert wsd_cooldowns([5, 100], fraction=0.2, warmup_steps=5) == [Cooldown(start=80, end=100)]


def test_lr_at_dispatches_on_kind() -> None:
    wsd = ScheduleConfig(kind="wsd")
    assert lr_at(9, wsd, peak=1.0, warmup_steps=1, total_steps=10, cooldown=None) == 1.0
    assert lr_at(9, wsd, peak=1.0, warmup_steps=1, total_steps=10, cooldown=Cooldown(start=8, end=10)) == 0.0
    cosine = ScheduleConfig(kind="cosine")
    assert lr_at(9, cosine, peak=1.0, warmup_steps=1, total_steps=10, cooldown=None) == pytest.approx(0.1)


def test_schedule_config_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"schedule\.kind='step' is unknown"):
        ScheduleConfig(kind="step")
    with pytest.raises(ConfigError, match=r"schedule\.cooldown_budgets is set but schedule\.kind is not wsd"):
        ScheduleConfig(kind="cosine", cooldown_budgets=[1000.0])


def test_rules_at_1e12_flops_suit_a_tiny_byte_model() -> None:
    assert rules.default_lr(1e12) == pytest.approx(0.3118 * 1e12**-0.125)
    assert 5e-3 < rules.default_lr(1e12) < 2e-2
    batch = rules.default_batch_tokens(1e12, sequence_length=128)
    assert batch % 128 == 0 and 2048 <= batch <= 4096
    assert rules.default_beta2(batch) == 0.99 and rules.default_beta2(2**20) == 0.95


def test_rules_at_chinchilla_scale() -> None:
    assert rules.default_lr(5.76e23) < 1e-3
    assert rules.default_batch_tokens(5.76e23, sequence_length=2048) > 1_000_000


def test_warmup_rule_is_n_tokens_capped_at_a_quarter_of_the_run() -> None:
    shape = PRESETS["n7k"]
    assert rules.default_warmup_tokens(7000) == 7000
    assert rules.default_warmup_steps(7000, tokens_per_step=1000, total_steps=100) == 7
    assert rules.default_warmup_steps(7000, tokens_per_step=1000, total_steps=12) == 3
    assert rules.deepseek_compute(shape, sequence_length=128, n_tokens=1) == 6 * 6984 + 6 * 24 * 128
