"""scripts/mix_study.py end to end on a synthetic store: five mixes of two domains whose per-domain losses follow a
known mixing law, every number the report prints produced by the library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scaling_lab.fitting.laws import CHINCHILLA_APPROACH3
from scaling_lab.fitting.synthetic import isoflop_table
from scaling_lab.planning.mixing import MixingLaw, best_loss_per_slice, mixture_of
from tests.fitting.conftest import BUDGETS, write_store

ROOT = Path(__file__).resolve().parents[2]
LAWS = {"prose": MixingLaw(target="prose", domains=("code", "prose"), c=0.8, k=0.4, t=(1.2, 0.0), n_mixes=0,
                           rms_residual=0.0),
        "code": MixingLaw(target="code", domains=("code", "prose"), c=0.6, k=0.9, t=(-1.5, 0.0), n_mixes=0,
                          rms_residual=0.0)}  # fmt: skip
MIXES = {"prose_only": 0.0, "code_only": 1.0, "half": 0.5, "prose80": 0.2, "code80": 0.8}  # the code share


def _store(root: Path) -> None:
    base = isoflop_table(CHINCHILLA_APPROACH3, budgets=BUDGETS[:4], noise=0.0, seed=0)
    for name, code_share in MIXES.items():
        shares = {"code": code_share, "prose": 1 - code_share}
        # each domain's loss is the base loss times its mixing law; the union is their mean
        factors = {domain: LAWS[domain].predict(shares) for domain in LAWS}
        union = (factors["prose"] + factors["code"]) / 2
        table = base.assign(loss=base["loss"] * union)
        sources = [{"name": d, "kind": "embedded", "domain": d, "weight": w} for d, w in shares.items() if w > 0]
        write_store(
            root,
            table,
            sweep=name,
            data_mix=name,
            suite="s",
            data={"sources": sources},
            set_factors={"all": 1.0, **{domain: factor / union for domain, factor in factors.items()}},
        )


def test_mixture_of_a_config_counts_each_domain():
    config = {"data": {"sources": [{"name": "a", "domain": "prose", "weight": 3}, {"name": "b", "weight": 1}]}}
    assert mixture_of(config) == {"b": 0.25, "prose": 0.75}


def test_the_mix_study_script_runs_end_to_end(tmp_path):
    _store(tmp_path / "results")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "mix_study.py"), "--store", str(tmp_path / "results"),
         "--held-out", "code80", "--out", str(tmp_path / "out"), "--bootstrap", "8"],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "out" / "report.txt").read_text()
    assert "every mix fitted on the same eval text: loss_code" in report
    assert "code80: predicted" in report and "best mixture for the union" in report
    laws = json.loads((tmp_path / "out" / "mixing_law.json").read_text())
    assert set(laws["laws"]) == {"prose", "code"}
    for law in laws["laws"].values():  # the laws hold exactly: the mix left out is predicted, at every slice
        assert law["held_out_predicted"] == pytest.approx(law["held_out_measured"], rel=1e-3)
        assert max(abs(error) for error in law["slice_errors"]) < 1e-3
    assert laws["union_weight"] == pytest.approx(0.5, abs=1e-6)
    assert laws["held_out_union_predicted"] == pytest.approx(laws["held_out_union_measured"], rel=1e-3)
    for name in ("table.csv", "mixtures.json", "mixing_law.png", "mix_comparison.png"):
        assert (tmp_path / "out" / name).exists(), name


def test_best_loss_per_slice_takes_each_mix_and_budget_minimum():
    import pandas as pd

    table = pd.DataFrame({"group": ["a"] * 4 + ["b"] * 2, "flops": [1e10, 1.005e10, 2e10, 2e10, 1e10, 1e10],
                          "loss": [3.0, 2.9, 2.5, 2.6, 3.1, 3.2]})  # fmt: skip
    best = best_loss_per_slice(table)
    assert best.groupby("group")["loss"].apply(list).to_dict() == {"a": [2.9, 2.5], "b": [3.1]}
    pytest.importorskip("matplotlib")


def test_too_few_mixes_is_one_error_line_and_writes_nothing(tmp_path):
    _store(tmp_path / "results")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "mix_study.py"), "--store", str(tmp_path / "results"),
         "--held-out", "no_such_mix", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: --held-out no_such_mix") and not (tmp_path / "out").exists()
