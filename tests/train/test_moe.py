"""Mixture-of-experts training: the load-balancing loss is in the objective, and a tiny MoE sweep runs end to end
through sl-train, its records carry the expert fields, the unified law fits them and sl-budget plans from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

from scaling_lab.model import ModelConfig, build_model
from scaling_lab.results import load_records
from scaling_lab.results.store import load_table
from scaling_lab.train.step import training_objective

ROOT = Path(__file__).parents[2]


def test_the_objective_adds_the_weighted_load_balancing_loss_to_the_cross_entropy() -> None:
    torch.manual_seed(0)
    config = ModelConfig(preset="n1k", n_experts=4, experts_per_token=2, router_aux_loss_coef=0.5)
    model = build_model(config, vocab_size=256, context=16)
    tokens = torch.randint(0, 256, (3, 17))
    with torch.no_grad():
        objective, cross_entropy = training_objective(model, tokens)
        output = model(input_ids=tokens[:, :-1])
    aux = load_balancing_loss_func(output.router_logits, 4, 2)  # Fedus et al. 2022 eq. 4, from the router logits
    assert aux > 0 and len(output.router_logits) == 1
    assert float(objective - cross_entropy) == pytest.approx(0.5 * float(aux), rel=1e-5)
    dense = build_model(ModelConfig(preset="n1k"), vocab_size=256, context=16)
    dense_objective, dense_cross_entropy = training_objective(dense, tokens)
    assert torch.equal(dense_objective, dense_cross_entropy)


def _router_gradient(coef: float) -> torch.Tensor:
    torch.manual_seed(0)
    model = build_model(ModelConfig(preset="n1k", n_experts=4, router_aux_loss_coef=coef), vocab_size=256, context=16)
    training_objective(model, torch.randint(0, 256, (3, 17)))[0].backward()
    return model.model.layers[0].mlp.gate.weight.grad.clone()


def test_the_router_learns_from_the_auxiliary_loss() -> None:
    assert not torch.allclose(_router_gradient(0.0), _router_gradient(1.0))


TINY_SWEEP = ["model=n1k,n3k", "model.n_experts=1,4,8", "budget.value=2560", "data.sequence_length=32",
              "data.eval_bytes=1024", "optim.batch_tokens=256", "optim.lr=0.02", "threads=1", "device=cpu",
              "debug.progress=false", "launcher=sequential", "logger=none", "sweep=moe_tiny"]  # fmt: skip


def _run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python command...`` in ``cwd`` on one thread, this checkout first on the path."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                          check=False)  # fmt: skip


def test_a_tiny_moe_sweep_trains_records_fits_and_plans(tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = _run("-m", "scaling_lab.cli.train", "-m", *TINY_SWEEP, f"paths.results_dir={results}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    records = {(r.config["model"]["preset"], r.n_experts): r for r in load_records(results)}
    assert len(records) == 6 and all(r.status == "finished" for r in records.values())
    dense, moe = records[("n1k", 1)], records[("n1k", 8)]
    assert (dense.n_params_active, dense.n_params_active_nonembed) == (dense.n_params_total, dense.n_params_nonembed)
    assert "n_experts" not in dense.config["model"]  # a dense config (and hash) is as before experts existed
    assert (moe.n_experts, moe.experts_per_token, moe.granularity, moe.expert_ffn_size) == (8, 1, 1.0, 24)
    # top-1 experts as wide as the dense MLP: the dense active count plus the router (8 × width 8)
    assert moe.n_params_active == dense.n_params_active + 8 * 8
    assert moe.n_params_total == dense.n_params_total + 7 * 3 * 8 * 24 + 8 * 8
    (point,) = moe.points
    assert point.flops_6nd == 6 * moe.n_params_active * point.n_tokens
    assert moe.run_id.startswith("n1k-e8k1-") and moe.tokens_per_second > 0
    table = load_table(results)
    assert sorted(set(table["n_experts"])) == [1, 4, 8]
    assert (table["n_params_active"] <= table["n_params_total"]).all()

    fits = tmp_path / "fits"
    fitted = _run(str(ROOT / "scripts" / "moe_fit.py"), "--store", str(results), "--out", str(fits),
                  "--bootstrap", "20", cwd=tmp_path)  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr[-2000:]
    assert "multiplier" in fitted.stdout and "E=8:" in fitted.stdout
    (law,) = json.loads((fits / "moe_law.json").read_text())
    assert law["n_points"] == 6 and law["n_tokens"] == 2560
    planned = _run("-m", "scaling_lab.cli.budget", "n_params=2e3", f"moe.law={fits / 'moe_law.json'}",
                   "moe.n_experts=8", "moe.experts_per_token=1", cwd=tmp_path)  # fmt: skip
    assert planned.returncode == 0, planned.stderr[-2000:]
    assert "MoE from the fitted law" in planned.stdout and "active params" in planned.stdout

    # a dense law refuses the mixed store until it is told which expert count to fit
    mixed = _run("-m", "scaling_lab.cli.fit", f"input={results}", f"out={tmp_path / 'dense'}", cwd=tmp_path)
    assert mixed.returncode == 2 and "table.n_experts=<E>" in mixed.stderr
    assert mixed.stderr.count("\n") == 1 and mixed.stderr.startswith("error: ")

    # the study's analysis: each expert count against the dense run of its size, the law, the figure
    study = _run(str(ROOT / "scripts" / "moe_study.py"), "--store", str(results), "--out", str(tmp_path / "study"),
                 "--bootstrap", "20", cwd=tmp_path)  # fmt: skip
    assert study.returncode == 0, study.stderr[-2000:]
    compared = pd.read_csv(tmp_path / "study" / "comparison.csv")
    assert (
        len(compared) == 6
        and (compared.loc[compared["n_experts"] == 1, ["loss_ratio", "speed_ratio"]] == 1).all().all()
    )
    assert "E=8: loss ratio" in study.stdout and (tmp_path / "study" / "moe.png").exists()
