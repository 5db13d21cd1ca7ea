import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from scaling_lab.cli.fit import CONFIGS_DIR, run
from scaling_lab.errors import exit_on_user_error
from scaling_lab.fitting.laws import CHINCHILLA_APPROACH3 as TRUTH
from scaling_lab.fitting.laws import ChinchillaLaw
from scaling_lab.fitting.run import ExtrapolationConfig, FitConfig, fit_input, write_outputs
from scaling_lab.fitting.table import FitInput

from .conftest import write_store

APPROACH3_KEYS = {"E", "A", "B", "alpha", "beta", "a", "b", "G", "objective", "n_points", "n_starts", "n_converged"}


def sl_fit_process(*args, cwd):
    """The real console entry point in a fresh process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    return subprocess.run(
        [sys.executable, "-m", "scaling_lab.cli.fit", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


class Done:
    def __init__(self, returncode, stderr):
        self.returncode, self.stderr = returncode, stderr


def sl_fit(*args, cwd, capsys):
    """The same app in this process: Hydra composes configs/sl_fit.yaml with the overrides (fast on 2 cores)."""
    with initialize_config_dir(version_base="1.3", config_dir=CONFIGS_DIR):
        cfg = compose(config_name="sl_fit", overrides=list(args))
    capsys.readouterr()
    try:
        exit_on_user_error(run)(cfg)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return Done(code, capsys.readouterr().err)


def test_fit_json_follows_the_contract(tmp_path, chinchilla_table, capsys):
    chinchilla_table(noise=0.01, seed=2).to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "fit"
    done = sl_fit(
        f"input={tmp_path / 't.csv'}",
        f"out={out}",
        "bootstrap=16",
        "seed=3",
        "figures=false",
        "fit.bootstrap.n_jobs=1",
        cwd=tmp_path,
        capsys=capsys,
    )
    assert done.returncode == 0, done.stderr
    fit = json.loads((out / "fit.json").read_text())
    a3 = fit["approach3"]
    assert APPROACH3_KEYS <= set(a3) and set(a3["ci95"]) == {"E", "A", "B", "alpha", "beta", "a", "b", "G"}
    assert len(a3["bootstrap_samples"]) + a3["n_bootstrap_failed"] == 16
    assert a3["n_params_column"] == "n_params" and a3["flops_column"] == "flops" and a3["objective"] == "huber"
    assert a3["alpha"] == pytest.approx(TRUTH.alpha, abs=0.05)
    assert len(a3["frontier"]) == 3 and set(a3["frontier"][0]["ci95"]) == {"n_opt", "d_opt", "tokens_per_param", "loss"}
    a2 = fit["approach2"]
    assert {"a", "b", "n_budgets", "budgets", "ci95"} <= set(a2) and set(a2["ci95"]) >= {"a", "b"}
    assert all({"flops", "n_opt", "bracketed"} <= set(b) for b in a2["budgets"])
    assert "approach1" not in fit and "curves" in fit["skipped"]["approach1"]
    assert fit["flops_accounting"] == "6nd" and fit["flops_per_token"]["per_param"] == 6  # a plain CSV: 6ND
    assert a3["frontier"][0]["n_opt"] == pytest.approx(ChinchillaLaw.from_dict(a3).n_opt(a3["frontier"][0]["flops"]))
    assert fit["extrapolation"]["n_heldout"] == 9 and fit["extrapolation"]["mean_abs_rel_error"] < 0.05
    report = (out / "report.txt").read_text()
    assert "Approach 3" in report and "4500 screened" in report and "[[Skipped approach1]]" in report


@pytest.mark.parametrize(
    ("frame_edit", "needle"),
    [
        (lambda t: t.drop(columns=["n_tokens"]), "column 'n_tokens'"),
        (lambda t: t.assign(loss=np.where(t.index == 0, -1.0, t["loss"])), "column loss must be finite and positive"),
        (lambda t: t.head(0), "table is empty"),
        (lambda t: t.assign(flops=t["n_tokens"] * 1e12 / t["n_params"]), "column flops: C/D (FLOPs per token) falls"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_fit_json(tmp_path, chinchilla_table, frame_edit, needle, capsys):
    frame_edit(chinchilla_table()).to_csv(tmp_path / "t.csv", index=False)
    done = sl_fit(f"input={tmp_path / 't.csv'}", f"out={tmp_path / 'fit'}", cwd=tmp_path, capsys=capsys)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    assert not (tmp_path / "fit" / "fit.json").exists()


def test_a_single_model_size_fits_nothing_and_exits_2(tmp_path, chinchilla_table, capsys):
    # (Kaplan's L(D) can still be fitted from one size, so ask for the two-variable approaches only)
    chinchilla_table().assign(n_params=1e8).to_csv(tmp_path / "t.csv", index=False)
    done = sl_fit(
        f"input={tmp_path / 't.csv'}",
        f"out={tmp_path / 'fit'}",
        "approaches=[approach3,approach2]",
        cwd=tmp_path,
        capsys=capsys,
    )
    assert done.returncode == 2 and "no approach could be fitted" in done.stderr and "2 model sizes" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "fit" / "fit.json").exists()


def test_unknown_setting_names_the_field(tmp_path, chinchilla_table, capsys):
    chinchilla_table().to_csv(tmp_path / "t.csv", index=False)
    done = sl_fit(
        f"input={tmp_path / 't.csv'}", f"out={tmp_path / 'fit'}", "approaches=[approach9]", cwd=tmp_path, capsys=capsys
    )
    assert done.returncode == 2 and "approach9" in done.stderr


def test_a_table_too_small_for_some_approaches_skips_them_with_reasons(tmp_path, chinchilla_table, capsys):
    table = chinchilla_table()
    table[table["flops"] < 5e18].to_csv(tmp_path / "t.csv", index=False)  # two budgets only
    out = tmp_path / "fit"
    done = sl_fit(f"input={tmp_path / 't.csv'}", f"out={out}", "figures=false", cwd=tmp_path, capsys=capsys)
    assert done.returncode == 0, done.stderr
    fit = json.loads((out / "fit.json").read_text())
    assert "approach3" in fit and "budgets with a bracketed minimum" in fit["skipped"]["approach2"]
    assert "extrapolation" in fit["skipped"]


def _fit_store_with_wandb(tmp_path, chinchilla_table, capsys, *extra):
    root = write_store(tmp_path / "results", chinchilla_table(noise=0.01, seed=1), sweep="grid")
    out = tmp_path / "fit"
    done = sl_fit(
        f"input={root}",
        f"out={out}",
        "logger=wandb",
        "logger.mode=offline",
        "fit.extrapolation.holdout_budgets=0",
        *extra,
        cwd=tmp_path,
        capsys=capsys,
    )
    assert done.returncode == 0, done.stderr
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    # the run record carries name fit-<sweep>, group <sweep>, job_type fit; the summary carries the estimates.
    # wandb's service process writes the .wandb log asynchronously: wait until it holds both (a bound, not a clock)
    log, deadline = b"", time.monotonic() + 300
    while time.monotonic() < deadline:
        log = next(runs[0].glob("*.wandb")).read_bytes()
        if b"fit-grid" in log and b"approach3.alpha" in log:
            break
        time.sleep(0.1)
    assert b"fit-grid" in log and b"approach3.alpha" in log
    tables = {p.name.split("_")[0] for p in (runs[0] / "files" / "media" / "table").glob("*.table.json")}
    assert tables == {"fit", "points"}
    return out, runs[0], json.loads((out / "fit.json").read_text())


def test_store_input_logs_a_fit_run_to_wandb_offline(tmp_path, chinchilla_table, capsys):
    _, _, fit = _fit_store_with_wandb(
        tmp_path, chinchilla_table, capsys, "approaches=[approach3,approach1]", "figures=false"
    )
    assert fit["input_kind"] == "store" and fit["sweeps"] == ["grid"]
    assert fit["approach3"]["n_params_column"] == "n_params_total" and fit["approach1"]["n_runs"] == 54


@pytest.mark.slow
def test_store_input_logs_figures_to_wandb(tmp_path, chinchilla_table, capsys):
    out, run_dir, _ = _fit_store_with_wandb(tmp_path, chinchilla_table, capsys, "approaches=[approach3,approach2]")
    assert {p.name for p in out.glob("*.png")} >= {"isoflop.png", "frontier.png", "contours.png", "residuals.png"}
    assert len(list((run_dir / "files" / "media" / "images").glob("*.png"))) == 5


def test_outputs_are_written_whole_or_not_at_all(tmp_path, chinchilla_table):
    data = FitInput(points=chinchilla_table(), curves=None, source="t.csv", kind="table")
    good = fit_input(data, FitConfig(approaches=("approach2",), extrapolation=ExtrapolationConfig(holdout_budgets=0)))
    fit_path, _ = write_outputs(good, tmp_path / "fit")
    before = fit_path.read_text()
    bad = dataclasses.replace(good, meta={**good.meta, "unserialisable": object()})
    with pytest.raises(TypeError):
        write_outputs(bad, tmp_path / "fit")
    # the earlier fit.json is untouched and no temporary file is left beside it
    assert fit_path.read_text() == before and json.loads(before)["approach2"]["n_budgets"] == 6
    assert sorted(p.name for p in (tmp_path / "fit").iterdir()) == ["fit.json", "report.txt"]


def test_console_entry_point_end_to_end(tmp_path, chinchilla_table):
    chinchilla_table().drop(columns=["loss"]).to_csv(tmp_path / "t.csv", index=False)
    done = sl_fit_process(f"input={tmp_path / 't.csv'}", f"out={tmp_path / 'fit'}", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "column 'loss'" in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # no fit.json, and no Hydra fit.log in the cwd


def test_a_store_of_only_bad_records_prints_one_error_line_listing_them(tmp_path):
    bad = {"r1": '{"run_id": "trunc', "r2": "[]"}
    for run_id, text in bad.items():
        (tmp_path / "results" / "s" / run_id).mkdir(parents=True)
        (tmp_path / "results" / "s" / run_id / "run.json").write_text(text)
    done = sl_fit_process("input=results", f"out={tmp_path / 'fit'}", cwd=tmp_path)
    assert done.returncode == 2
    (error,) = done.stderr.strip().splitlines()  # the skipped files are in the error line, not a warning before it
    assert error.startswith("error: input=results: the results store has no runs")
    assert "skipped 2 run record(s)" in error and all(f"results/s/{run_id}/run.json" in error for run_id in bad)


def test_a_bad_record_beside_good_ones_is_reported_once_and_the_fit_runs(tmp_path, chinchilla_table):
    root = write_store(tmp_path / "results", chinchilla_table(), sweep="grid")
    (root / "grid" / "broken").mkdir()
    (root / "grid" / "broken" / "run.json").write_text("")
    done = sl_fit_process(f"input={root}", f"out={tmp_path / 'fit'}", "approaches=[approach3]", "figures=false",
                          "fit.extrapolation.holdout_budgets=0", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: skipped 1 run record(s): ")  # not twice
    assert str(root / "grid" / "broken" / "run.json") in lines[0]


def test_a_table_in_exact_flops_gets_frontiers_along_exact_flops_and_says_so(tmp_path, capsys):
    from scaling_lab.budget import FlopsPerToken
    from scaling_lab.fitting.synthetic import isoflop_table
    from scaling_lab.planning.budget import BudgetQuery, plan_budget
    from scaling_lab.planning.laws import load_law

    truth_per_token = FlopsPerToken(accounting="exact", overhead=89.45, exponent=0.66)  # the quickstart's shapes
    table = isoflop_table(
        TRUTH,
        budgets=np.geomspace(1e11, 1e14, 4),
        sizes_per_budget=7,
        span_decades=0.6,
        noise=0.002,
        seed=1,
        per_token=truth_per_token,
    )
    # As sl-collect writes it: both FLOP counts, the store's column names.
    collected = table.rename(columns={"n_params": "n_params_total", "flops": "flops_exact"}).assign(
        n_params_nonembed=lambda t: t["n_params_total"] * 0.5,
        status="finished",
        flops_6nd=lambda t: 6 * t["n_params_total"] * t["n_tokens"],
    )
    collected.to_csv(tmp_path / "collected.csv", index=False)
    common = (
        f"input={tmp_path / 'collected.csv'}",
        "approaches=[approach3]",
        "figures=false",
        "fit.extrapolation.holdout_budgets=0",
    )
    done = sl_fit(*common, f"out={tmp_path / 'exact'}", "fit.table.store_flops=exact", cwd=tmp_path, capsys=capsys)
    assert done.returncode == 0, done.stderr
    fit = json.loads((tmp_path / "exact" / "fit.json").read_text())
    assert fit["flops_accounting"] == "exact" and fit["flops_column"] == "flops_exact"
    per_token = FlopsPerToken.from_dict(fit["flops_per_token"])  # re-created from fit.json alone
    assert per_token(table["n_params"]) == pytest.approx(table["flops"] / table["n_tokens"], rel=1e-9)
    law = ChinchillaLaw.from_dict(fit["approach3"])
    row = fit["approach3"]["frontier"][0]
    assert row["n_opt"] == pytest.approx(float(law.n_opt(row["flops"], per_token)), rel=1e-9)
    assert row["d_opt"] * float(per_token(row["n_opt"])) == pytest.approx(row["flops"], rel=1e-9)
    assert float(law.d_opt(row["flops"])) / row["d_opt"] > 1.1  # solving along 6ND: D 1.13x too large here
    assert "FLOPs        = exact: C/D = 6·N + 89.45·N^0.66" in (tmp_path / "exact" / "report.txt").read_text()
    plan = plan_budget(load_law(tmp_path / "exact" / "fit.json"), BudgetQuery(flops=row["flops"]))
    assert plan.n_params.value == pytest.approx(row["n_opt"], rel=1e-9) and "(FLOPs, exact)" in plan.report()

    done = sl_fit(*common, f"out={tmp_path / 'sixnd'}", "fit.table.store_flops=6nd", cwd=tmp_path, capsys=capsys)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "sixnd" / "fit.json").read_text())["flops_accounting"] == "6nd"
