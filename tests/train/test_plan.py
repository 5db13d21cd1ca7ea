"""A plan's steps and tokens come from scaling_lab.budget's arithmetic, and the run's AdamW from one function."""

from __future__ import annotations

import warnings
from dataclasses import replace

import pytest
import torch

from scaling_lab.budget import flops_6nd, rounded_steps, tokens_for_budget, tokens_for_steps, whole_steps
from scaling_lab.model.build import build_model
from scaling_lab.train import optim
from scaling_lab.train.optim import adamw_for_run
from scaling_lab.train.plan import make_plan
from scaling_lab.train.progress import measurement
from scaling_lab.train.step import Scores


def test_wsd_cooldown_budgets_become_steps_through_the_budgets_rounding(tiny_config) -> None:
    """A cooldown budget that is not a whole number of batches warns as the run's own budget does."""
    config = tiny_config(schedule={"kind": "wsd", "cooldown_budgets": [5000.0]})  # 19.5 batches of 256 tokens
    with pytest.warns(UserWarning, match=r"^schedule\.cooldown_budgets 5000 \(tokens\): rounding 5000 tokens to 20"):
        plan = make_plan(config, vocab_size=256)
    field = "schedule.cooldown_budgets"
    with pytest.warns(UserWarning, match=r"rounding 5000 tokens to 20 steps of 256 tokens gives 5120 tokens"):
        assert plan.point_steps == (rounded_steps(5000.0, tokens_per_step=256, field=field), plan.steps)
    whole = tiny_config(schedule={"kind": "wsd", "cooldown_budgets": [5120.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 20 whole batches: nothing to say
        assert make_plan(whole, vocab_size=256).point_steps == (20, 40)


def test_cooldown_budgets_in_flops_use_the_budgets_tokens(tiny_config) -> None:
    config = tiny_config(
        schedule={"kind": "wsd", "cooldown_budgets": [5e8]}, budget={"kind": "flops_6nd", "value": 1e9}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # whole batches or not, the steps are the budget module's
        plan = make_plan(config, vocab_size=256)
        tokens = tokens_for_budget(replace(config.budget, value=5e8), n_params=plan.n_params_total,
                                   flops_per_token_exact=plan.flops_per_token_exact)  # fmt: skip
        assert plan.point_steps[0] == rounded_steps(tokens, tokens_per_step=plan.tokens_per_step, field="")


def test_tokens_of_steps_and_steps_of_tokens_are_the_budget_modules(tiny_config) -> None:
    config = tiny_config(schedule={"kind": "cosine", "warmup_tokens": 1000}, eval_every_tokens=1800)
    plan = make_plan(config, vocab_size=256)
    per_step = plan.tokens_per_step
    assert plan.n_tokens == tokens_for_steps(plan.steps, per_step) == 10_240
    assert plan.warmup_steps == whole_steps(1000, per_step, round_up=True) == 4  # at least the tokens asked for
    assert plan.warmup_tokens == tokens_for_steps(4, per_step)
    every = whole_steps(1800, per_step)  # the nearest whole number of steps: 7
    assert plan.eval_steps == (*range(every, plan.steps + 1, every), plan.steps) == (7, 14, 21, 28, 35, 40)
    assert plan.flops_spent_exact == plan.flops_per_token_exact * tokens_for_steps(plan.steps_trained, per_step)
    scores = Scores(losses={"prose": 2.0, "code": 4.0, "all": 3.0}, bpb={"prose": 2.9, "code": 5.8, "all": 4.3})
    point = measurement(plan, steps=7, scores=scores, train_loss=None)
    assert point["loss"] == 3.0 and point["losses"] == scores.losses and point["bpb"] == scores.bpb
    assert point["n_tokens"] == tokens_for_steps(7, per_step)
    assert point["flops_6nd"] == flops_6nd(plan.n_params_total, point["n_tokens"])


def test_the_runs_adamw_follows_the_optim_config(tiny_config) -> None:
    config = tiny_config(optim={"beta1": 0.8, "eps": 1e-6, "weight_decay": 0.3})
    model = build_model(config.model, vocab_size=256, context=32, device=torch.device("cpu"))
    adamw = adamw_for_run(model, config.optim, lr=0.01, beta2=0.97, device=torch.device("cpu"))
    assert [(g["lr"], g["betas"], g["eps"], g["weight_decay"]) for g in adamw.param_groups] == [
        (0.01, (0.8, 0.97), 1e-6, 0.3),
        (0.01, (0.8, 0.97), 1e-6, 0.0),  # norms and vocabulary matrices: no decay
    ]
    assert adamw.defaults["fused"] == config.optim.fused_on("cpu")


def test_the_dry_run_probe_times_the_runs_own_adamw(tiny_config, monkeypatch) -> None:
    """The probe builds its optimizer with the trainer's function and the run's optim settings."""
    from scaling_lab.sweep.dry_run import probe_seconds_per_step

    built = []

    def recording(model, optim_config, **kwargs):
        built.append((optim_config, kwargs))
        return adamw_for_run(model, optim_config, **kwargs)

    monkeypatch.setattr(optim, "adamw_for_run", recording)
    config = tiny_config(optim={"beta1": 0.8, "weight_decay": 0.3})
    plan = make_plan(config, vocab_size=256)
    assert probe_seconds_per_step(config, plan) > 0
    assert built == [(config.optim, {"lr": plan.lr, "beta2": plan.beta2, "device": torch.device("cpu")})]
