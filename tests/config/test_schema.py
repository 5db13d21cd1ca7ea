"""RunConfig: one clear error per bad field, and a hash that follows what changes results."""

from __future__ import annotations

import math
from typing import Any

import pytest

from scaling_lab.config.schema import run_config_from_dict
from scaling_lab.errors import ConfigError
from scaling_lab.train.plan import make_plan

BASE: dict[str, Any] = {
    "model": {"preset": "n7k"},
    "data": {
        "name": "embedded",
        "sources": [{"name": "prose", "kind": "embedded", "domain": "prose"}],
        "sequence_length": 64,
    },
    "optim": {},
    "schedule": {},
    "budget": {"kind": "tokens", "value": 1e5},
    "logger": {"backend": "none"},
    "paths": {"results_dir": "results"},
    "debug": {},
}


def config_with(**changes: Any):
    values = {key: dict(value) if isinstance(value, dict) else value for key, value in BASE.items()}
    for dotted, value in changes.items():
        section, _, name = dotted.partition("__")
        if name:
            values[section] = {**values[section], name: value}
        else:
            values[section] = value
    return run_config_from_dict(values)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": {"n_layers": 2, "width": 64, "n_heads": 3}}, r"^model\.n_heads=3 does not divide model\.width=64"),
        ({"model": {"preset": "n2t"}}, r"^model\.preset='n2t' is unknown: choose one of n1k, "),
        ({"budget__value": 0}, r"^budget\.value=0 must be a positive number of tokens"),
        ({"budget__value": -1e6}, r"^budget\.value=-1000000\.0 must be a positive number"),
        ({"optim__lr": 0.0}, r"^optim\.lr=0\.0 must be > 0"),
        ({"optim__lr": -3e-4}, r"^optim\.lr=-0\.0003 must be > 0"),
        ({"schedule__kind": "linear"}, r"^schedule\.kind='linear' is unknown"),
        ({"model__bogus": 1}, r"^model.bogus is not a setting: choose among "),
        ({"seed": -1}, r"^seed=-1 must be an integer from 0 to 2\^63 - 1"),
        ({"seed": 2**64}, r"^seed=18446744073709551616 does not fit a 64-bit integer"),
        ({"sweep": "a/b"}, r"^sweep='a/b' must be a folder name"),
        ({"optim__lr": math.nan}, r"^optim\.lr=nan is not a finite number"),
        (
            {"schedule": {"kind": "wsd", "cooldown_budgets": [1e5, math.inf]}},
            r"^schedule\.cooldown_budgets=\[100000\.0, inf\] is not a finite number",
        ),
        ({"model": {"target_n": 1e16}}, r"^model\.target_n=1e\+16 must lie in \(0, 1e\+15\]"),
        ({"model": {"n_layers": 2, "width": 2**20, "n_heads": 2}}, r"^model\.width=1048576 is above 262144"),
        ({"model": {"preset": "n1k", "rope_theta": 0.0}}, r"^model\.rope_theta=0\.0 must be > 0"),
    ],
)
def test_each_bad_field_gives_one_line_naming_it(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        config_with(**changes)
    assert "\n" not in str(error.value)


def test_batch_larger_than_the_budget_names_the_batch() -> None:
    config = config_with(budget__value=1000, optim__batch_tokens=4096)
    with pytest.raises(ConfigError, match=r"1000 tokens, less than one batch of 4096 tokens.*optim\.batch_tokens"):
        make_plan(config, vocab_size=256)


def test_a_budget_beyond_any_run_names_budget_value() -> None:
    for budget in ({"kind": "tokens", "value": 1e30}, {"kind": "flops_6nd", "value": 1e30}):
        with pytest.raises(
            ConfigError,
            match=r"gives .* tokens, more than the 1e\+15 one run may train on: lower"
            r" budget\.value",
        ):
            make_plan(config_with(budget=budget), vocab_size=256)


def test_a_wsd_cooldown_beyond_the_budget_names_both_fields() -> None:
    config = config_with(
        schedule={"kind": "wsd", "cooldown_budgets": [2e11]}, budget={"kind": "flops_exact", "value": 1e11}
    )
    with pytest.raises(
        ConfigError,
        match=r"schedule\.cooldown_budgets has 2e\+11 \(flops_exact\), beyond budget"
        r"\.value=1e\+11",
    ):
        make_plan(config, vocab_size=256)


def test_wsd_cooldowns_in_flops_land_on_their_budgets() -> None:
    config = config_with(
        schedule={"kind": "wsd", "cooldown_budgets": [2.5e10, 5e10]}, budget={"kind": "flops_exact", "value": 1e11}
    )
    plan = make_plan(config, vocab_size=256)
    step_flops = plan.flops_per_token_exact * plan.tokens_per_step
    point_flops = [steps * step_flops for steps in plan.point_steps]
    assert point_flops == pytest.approx([2.5e10, 5e10, 1e11], abs=step_flops)
    branched = sum(c.end - c.start for c in plan.cooldowns[:-1])
    assert plan.flops_spent_exact == pytest.approx((plan.steps + branched) * step_flops)
    assert plan.flops_spent_exact == pytest.approx(1e11 + 0.2 * 7.5e10, rel=0.02)  # C_max + 20 % of each branch


def test_batch_must_be_whole_sequences() -> None:
    with pytest.raises(ConfigError, match=r"optim\.batch_tokens=1000 is not a multiple .* use 1024"):
        make_plan(config_with(optim__batch_tokens=1000), vocab_size=256)


def test_hash_ignores_where_and_how_but_not_what() -> None:
    base = config_with()
    same = config_with(paths={"results_dir": "elsewhere"}, logger={"backend": "wandb"}, threads=3,
                       debug={"crash_at_step": 5}, sweep="other")  # fmt: skip
    assert base.config_hash() == same.config_hash() and base.run_id() == same.run_id()
    for changed in (config_with(optim__lr=1e-3), config_with(budget__value=2e5), config_with(seed=1),
                    config_with(model={"preset": "n3k"}), config_with(data__sequence_length=32)):  # fmt: skip
        assert changed.config_hash() != base.config_hash()
    assert base.run_id().startswith("n7k-tokens1e+05-")


def test_plan_follows_the_rules_and_the_budget() -> None:
    plan = make_plan(config_with(), vocab_size=256)
    assert plan.n_params_nonembed == 6984 and plan.n_params_total == 6984 + 2 * 256 * 24
    assert plan.tokens_per_step % 64 == 0 and plan.steps * plan.tokens_per_step == plan.n_tokens
    assert abs(plan.n_tokens - 1e5) / 1e5 <= 0.5 * plan.tokens_per_step / 1e5 + 1e-12
    assert plan.eval_steps[-1] == plan.steps and len(plan.eval_steps) == 10
    assert len(plan.checkpoint_steps) == 4 and 1 <= plan.warmup_steps <= plan.steps // 4
    flops = make_plan(config_with(budget={"kind": "flops_exact", "value": 1e12}), vocab_size=256)
    assert flops.n_tokens_planned * flops.flops_per_token_exact == pytest.approx(1e12)
