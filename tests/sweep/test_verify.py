"""sl-verify end to end on a tiny recipe: a real 3-run WSD sweep (the recipe), a real sl-fit of a small table in
that sweep's shape family (the prediction), then the real sl-verify in a subprocess trains the slice, compares and
writes verify.json, report.txt and the figure; a rerun trains nothing; bad inputs end with one error line."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from scaling_lab.cli import CONFIGS_DIR
from scaling_lab.errors import TableError
from scaling_lab.fitting.laws import ChinchillaLaw
from scaling_lab.model.shapes import Shape, flops_per_token_exact, n_params_nonembed, n_params_total
from scaling_lab.results import load_records, read_record
from scaling_lab.sweep.verify import ShapeFamily, recipe_of, snap

VOCAB, CONTEXT = 256, 16
TRAIN = ("logger=none", "threads=1", "device=cpu", "debug.progress=false")
"""Unhashed sl-train settings for every run here (one thread, no wandb, no progress bar)."""
LAW = ChinchillaLaw(E=1.5, A=1000.0, B=200.0, alpha=0.5, beta=0.5)
"""The law behind the fitted table: its optimum at the table's budgets lies inside the widths 8-40 of one layer."""


def run(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run([sys.executable, "-m", f"scaling_lab.cli.{module}", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip


def family_table() -> pd.DataFrame:
    """An isoFLOP table (store-shaped columns, as sl-collect writes) of one-layer widths 8-40 at three exact-FLOP
    budgets, losses from LAW with 0.2 % noise."""
    rng = np.random.default_rng(0)
    rows = []
    for flops in (2.5e7, 5e7, 1e8):
        for width in (8, 12, 16, 20, 24, 32, 40):
            shape = Shape(n_layers=1, width=width, n_heads=1)
            total = n_params_total(shape, VOCAB, tied=False)
            tokens = flops / flops_per_token_exact(shape, VOCAB, CONTEXT)
            rows.append({"n_params_total": total, "n_params_nonembed": n_params_nonembed(shape), "n_tokens": tokens,
                         "loss": float(LAW.loss(total, tokens)) * (1 + rng.normal(0, 0.002)), "flops_exact": flops,
                         "flops_6nd": 6.0 * total * tokens, "run_id": f"w{width}-{flops:g}"})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The recipe (a 3-width WSD sweep to 4e8 exact FLOPs with a cooldown at 2e8) and a fit.json."""
    root = tmp_path_factory.mktemp("verify")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(p.read_text() for p in sorted(Path(__file__).parents[2].glob("scaling_lab/**/*.py"))))
    sweep = run("train", "-m", "model=custom", "model.n_layers=1", "model.width=8,16,24", "model.n_heads=1",
                "budget=flops", "budget.value=4e8", "schedule=wsd", "schedule.cooldown_budgets=[2e8]",
                "optim.batch_tokens=128", "data=local_files", f"data.sources.0.paths=[{corpus}]",
                f"data.sequence_length={CONTEXT}", "data.eval_bytes=1024", "curve_eval_tokens=256",
                f"paths.cache_dir={root / 'cache'}", f"paths.results_dir={root / 'results'}", "sweep=tiny", *TRAIN,
                f"hydra.sweep.dir={root / 'multirun'}", cwd=root)  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    family_table().to_csv(root / "table.csv", index=False)
    from scaling_lab.cli.fit import run as fit

    with initialize_config_dir(version_base="1.3", config_dir=CONFIGS_DIR):
        cfg = compose("sl_fit", overrides=[f"input={root / 'table.csv'}", f"out={root / 'fit'}", "bootstrap=20",
                                           "fit.table.store_flops=exact", "approaches=[approach3,approach2]",
                                           "fit.bootstrap.n_jobs=1", "figures=false"])  # fmt: skip
    fit(cfg)
    return SimpleNamespace(root=root, store=root / "results" / "tiny", fit=root / "fit" / "fit.json")


def test_sl_verify_trains_the_slice_compares_and_a_rerun_trains_nothing(tiny: SimpleNamespace) -> None:
    out = tiny.root / "out"
    args = (f"fit_json={tiny.fit}", f"store={tiny.store}", f"out={out}", "--", *TRAIN)
    done = run("verify", *args, cwd=tiny.root)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "verify.json").read_text())
    fit = json.loads(tiny.fit.read_text())
    assert result["target_flops"] == pytest.approx(10 * fit["max_flops"]) and result["flops_column"] == "flops_exact"
    assert set(result["predictions"]) == {"approach3", "approach2"} and "approach1" in result["skipped"]
    intervals = [p["n_opt_ci"] for p in result["predictions"].values()]
    sizes = [p["n_params"] for p in result["planned"]]
    assert len(sizes) == 3 and sizes[0] < min(low for low, _ in intervals) < max(h for _, h in intervals) < sizes[2]
    # the slice: 3 sizes × seeds 0, 1, every run a plain run to the target in the fit's accounting (exact FLOPs)
    records = [read_record(p) for p in sorted((tiny.root / "results" / "tiny_verify").glob("*/run.json"))]
    assert len(records) == 6 and sorted(r.seed for r in records) == [0, 0, 0, 1, 1, 1]
    assert all(len(r.points) == 1 and r.config["schedule"]["kind"] == "wsd" for r in records)
    assert all(r.config["schedule"]["cooldown_budgets"] == [] for r in records)
    assert all(abs(r.points[-1].flops_exact / result["target_flops"] - 1) < 0.05 for r in records)
    recipe = load_records(tiny.store)[0].config
    assert all(r.config["optim"]["batch_tokens"] == recipe["optim"]["batch_tokens"] for r in records)  # fixed
    assert len({r.config["optim"]["lr"] for r in records}) == 3  # the per-size rule, at each new size
    assert all(r.config["data"] == recipe["data"] for r in records)
    measured = result["measured"]
    assert [s["n_seeds"] for s in measured["sizes"]] == [2, 2, 2]
    assert [s["n_params"] for s in measured["sizes"]] == pytest.approx(sizes)
    best_mean = min(s["loss_mean"] for s in measured["sizes"])
    if measured["bracketed"]:
        assert measured["best_loss_method"] == "profile minimum" and measured["best_loss"] <= best_mean
    else:
        assert measured["best_loss_method"].startswith("lowest mean") and measured["best_loss"] == best_mean
    for name, prediction in result["predictions"].items():
        assert result["comparison"][name]["loss_rel_error"] == pytest.approx(
            prediction["loss"] / measured["best_loss"] - 1
        )
    assert "[[Predicted against measured]]" in (out / "report.txt").read_text()
    assert (out / "verify.png").stat().st_size > 0 and (out / "verify.svg").stat().st_size > 0
    assert (out / "sweep" / "experiment" / "tiny_verify.yaml").is_file()
    # relaunch safety: a rerun finds every point finished and trains nothing
    again = run("verify", *args, cwd=tiny.root)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skip tiny_verify/") == 6 and "finished tiny_verify/" not in again.stdout
    assert json.loads((out / "verify.json").read_text())["measured"] == measured


def test_dry_run_prints_the_plan_and_writes_nothing(tiny: SimpleNamespace) -> None:
    out = tiny.root / "dry"
    done = run("verify", f"fit_json={tiny.fit.parent}", f"store={tiny.store}", f"out={out}", "sweep=dry_only",
               "sizes=4", "seeds=[3]", "--dry-run", cwd=tiny.root)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("custom-flopsexact1e+09-") == 4 and "dry run: nothing trained" in done.stdout
    assert not out.exists() and not (tiny.root / "results" / "dry_only").exists()


def test_bad_inputs_end_with_one_error_line_and_leave_nothing(tiny: SimpleNamespace, tmp_path: Path) -> None:
    kaplan_only = tmp_path / "kaplan.json"
    kaplan_only.write_text(
        json.dumps(
            {
                "n_params_column": "n_params_total",
                "flops_column": "flops_exact",
                "max_flops": 1e8,
                "kaplan": {},
                "skipped": {"approach3": "too few points"},
            }
        )
    )
    table_fit = tmp_path / "table.json"
    table_fit.write_text(json.dumps({"n_params_column": "n_params", "flops_column": "6ND", "max_flops": 1e8}))
    (tmp_path / "empty").mkdir()
    good = {"fit_json": str(tiny.fit), "store": str(tiny.store)}
    cases = [
        ({"fit_json": str(tmp_path / "nowhere.json")}, "nowhere.json"),
        ({"fit_json": str(kaplan_only)}, "no approach with an N_opt"),
        ({"fit_json": str(table_fit)}, "n_params_column='n_params'"),
        ({"store": str(tmp_path / "empty")}, "holds no finished run records"),
        ({"sizes": "0"}, "sizes=0"),
        ({"seeds": "[-1]"}, "seeds=[-1]"),
        ({"target_multiple": "-3"}, "target_multiple=-3"),
        ({"margin": "0.5"}, "margin=0.5"),
        ({"--": "launcher=nowhere"}, "launcher/nowhere"),  # after --: sl-train's overrides, checked by its dry run
    ]

    def attempt(case: tuple[dict[str, str], str]) -> tuple[subprocess.CompletedProcess[str], str, Path]:
        values, expected = case
        out = tmp_path / f"out{cases.index(case)}"
        args = [f"{key}={value}" for key, value in {**good, **values, "out": str(out)}.items() if key != "--"]
        args += ["--", values["--"]] if "--" in values else []
        return run("verify", *args, cwd=tmp_path), expected, out

    with ThreadPoolExecutor(max_workers=2) as pool:
        for done, expected, out in pool.map(attempt, cases):
            lines = done.stderr.strip().splitlines()
            assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
            assert expected in lines[0] and "Traceback" not in done.stderr
            assert not out.exists()


def test_a_slice_sl_train_refuses_to_start_is_one_error_line_and_leaves_nothing(
    tiny: SimpleNamespace, tmp_path: Path
) -> None:
    # more threads than cores passes sl-verify's dry run of the slice; sl-train's pre-start check refuses it
    out = tmp_path / "new" / "out"
    done = run("verify", f"fit_json={tiny.fit}", f"store={tiny.store}", f"out={out}", "sweep=refused", "--", *TRAIN,
               f"threads={4 * os.cpu_count()}", cwd=tmp_path)  # fmt: skip
    *warnings, error = done.stderr.strip().splitlines()  # the plan's warnings (budgets rounded to whole steps)
    assert done.returncode == 2 and error.startswith("error: threads="), done.stderr
    assert all(line.startswith("warning: ") for line in warnings) and "Traceback" not in done.stderr
    assert "custom-flopsexact" in done.stdout  # the slice was planned, so the refusal came from sl-train
    assert not (tmp_path / "new").exists() and not (tiny.root / "results" / "refused").exists()
    # a rerun's refusal puts back the sweep file a previous start wrote, byte for byte
    sweep_file = out / "sweep" / "experiment" / "refused.yaml"
    sweep_file.parent.mkdir(parents=True)
    sweep_file.write_text("# the previous slice\n")
    again = run("verify", f"fit_json={tiny.fit}", f"store={tiny.store}", f"out={out}", "sweep=refused", "--", *TRAIN,
                f"threads={4 * os.cpu_count()}", cwd=tmp_path)  # fmt: skip
    assert again.returncode == 2 and again.stderr.count("error: ") == 1, again.stderr
    assert sweep_file.read_text() == "# the previous slice\n" and sorted(out.rglob("*")) == [
        out / "sweep",
        out / "sweep" / "experiment",
        sweep_file,
    ]


def test_the_recipe_is_one_recipe(tiny: SimpleNamespace) -> None:
    records = load_records(tiny.store)
    recipe = recipe_of(records, tiny.store, "n_params_total", "flops_exact")
    assert recipe.config["optim"]["lr"] is None and recipe.config["optim"]["batch_tokens"] == 128
    assert recipe.config["schedule"]["warmup_tokens"] is None and recipe.config["schedule"]["cooldown_budgets"] == []
    assert recipe.family.kind == "explicit" and recipe.family.vocab_size == VOCAB
    other = {**records[1].config, "data": {**records[1].config["data"], "eval_bytes": 2048}}
    with pytest.raises(TableError, match=r"data\.eval_bytes"):
        recipe_of([records[0], dataclasses.replace(records[1], config=other)], tiny.store, "n_params_total",
                  "flops_exact")  # fmt: skip


def test_explicit_family_widths_heads_and_distinct_snaps() -> None:
    family = ShapeFamily(kind="explicit", recorded=((2, 8, 1), (2, 32, 2), (2, 48, 2)), vocab_size=VOCAB,
                         sequence_length=128, tied=False, ffn_size=None, n_column="n_params_total",
                         flops_column="flops_exact")  # fmt: skip
    members = family.members(1e3, 1e6)
    assert all(m.shape.width % 8 == 0 and m.shape.n_layers == 2 for m in members)
    heads = {m.shape.width: m.shape.n_heads for m in members}
    assert heads[8] == 1 and heads[16] == 1 and heads[24] == 2 and heads[56] == 2  # nearest recorded width's
    assert all(m.flops_per_token == flops_per_token_exact(m.shape, VOCAB, 128) for m in members)
    near = members[3].n_params
    chosen = snap(members, [near, near * 1.01, near * 0.99])  # three wishes for one size: three distinct sizes
    assert len({m.shape for m in chosen}) == 3 and [m.n_params for m in chosen] == sorted(m.n_params for m in chosen)
