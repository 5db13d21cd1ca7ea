"""A sweep and its points, with real tiny runs end to end: loss falls, the record is complete, resume is exact,
divergence is caught, a relaunch skips what ended, failures are named and collected records make a table."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from filelock import FileLock

from scaling_lab.results import RunRecord, read_record, record_path
from scaling_lab.results.provenance import run_config_hash
from scaling_lab.sweep.grids import GridPoint
from scaling_lab.sweep.sweep import LOCK_NAME, REFUSED, Sweep, run_point
from scaling_lab.train.checkpoint import CHECKPOINT_NAME


def test_tiny_run_loss_falls_and_record_has_every_field(tiny_config) -> None:
    config = tiny_config()
    outcome = run_point(config)
    assert outcome.action == "trained"
    record = read_record(record_path(config.paths.results_dir, config.sweep, config.run_id()))
    assert record == outcome.record
    assert record.status == "finished" and record.reason == "" and record.diverged_at_step is None
    # the loss falls from ln(256) ≈ 5.55 (uniform over bytes) well below it
    assert record.curve[0].loss > record.curve[-1].loss
    assert record.final_loss < 0.75 * math.log(256)
    assert record.n_tokens == 40 * 256 and record.n_tokens_planned == 10_240
    assert (record.n_params_total, record.n_params_nonembed, record.tied_embeddings) == (4952, 856, False)
    (point,) = record.points
    assert point.n_tokens == record.n_tokens and point.loss == record.curve[-1].loss
    assert point.flops_6nd == 6 * 4952 * record.n_tokens and point.flops_exact > point.flops_6nd
    assert len(record.curve) == 10 and point.train_loss is not None
    assert record.tokens_per_second > 0 and record.flops_per_second > 0 and record.mfu is None  # CPU: no peak
    assert record.wall_time_s > 0 and record.device.startswith("cpu")
    assert set(record.versions) == {"python", "torch", "transformers", "datasets", "scaling_lab"}
    assert record.data_mix == "embedded" and len(record.data_mix_hash) == 16
    # the run_id hashes the config as given; the record's hash is of the config as stored (rules filled in)
    assert record.run_id.endswith(config.config_hash()[:10]) and record.config["optim"]["lr"] == 0.02
    assert record.config_hash == run_config_hash(record.config) != config.config_hash()
    assert record.created_at <= record.finished_at
    every = {f.name for f in dataclasses.fields(RunRecord)}
    stored = json.loads(Path(record_path(config.paths.results_dir, config.sweep, record.run_id)).read_text())
    assert every <= set(stored)
    assert not (Path(config.paths.results_dir) / config.sweep / record.run_id / CHECKPOINT_NAME).exists()


def test_relaunch_skips_a_finished_point(tiny_config, capsys) -> None:
    config = tiny_config(budget={"value": 2560})
    assert run_point(config).action == "trained"
    assert run_point(config).action == "skipped-finished"
    assert "skip default/" in capsys.readouterr().out


def test_a_locked_point_is_skipped(tiny_config) -> None:
    config = tiny_config(budget={"value": 2560})
    folder = Path(config.paths.results_dir) / config.sweep / config.run_id()
    folder.mkdir(parents=True)
    with FileLock(folder / LOCK_NAME):  # another launch trains this point
        assert run_point(config).action == "skipped-locked"
    assert not (folder / "run.json").exists()


def test_crash_then_relaunch_resumes_to_the_same_loss(tiny_config, tmp_path, capsys) -> None:
    straight = run_point(tiny_config(results=tmp_path / "a")).record
    crashing = tiny_config(results=tmp_path / "b", debug={"crash_at_step": 20, "progress": False})
    failed = run_point(crashing).record
    assert failed.status == "failed" and "debug.crash_at_step=20" in failed.reason
    assert (tmp_path / "b" / "default" / failed.run_id / CHECKPOINT_NAME).exists()  # checkpoint at step 10 and 20
    assert run_point(tiny_config(results=tmp_path / "b")).action == "skipped-failed"  # not unless asked
    capsys.readouterr()
    resumed = run_point(tiny_config(results=tmp_path / "b", retry_failed=True))
    assert f"resume default/{failed.run_id} from step 20 of " in capsys.readouterr().out
    assert resumed.action == "resumed" and resumed.record.status == "finished"
    assert resumed.record.run_id == straight.run_id  # debug switches do not change the run's identity
    assert resumed.record.final_loss == pytest.approx(straight.final_loss, abs=1e-5)
    assert [p.loss for p in resumed.record.curve] == pytest.approx([p.loss for p in straight.curve], abs=1e-5)


def test_divergence_stops_the_run_and_records_the_step(tiny_config) -> None:
    record = run_point(tiny_config(optim={"lr": 1e3}, divergence_factor=1.5)).record
    assert record.status == "diverged"
    assert record.diverged_at_step is not None and 1 <= record.diverged_at_step < 40
    assert "training loss" in record.reason
    assert record.n_tokens < 40 * 256
    assert run_point(tiny_config(optim={"lr": 1e3}, divergence_factor=1.5)).action == "skipped-diverged"


def test_wsd_run_gives_one_point_per_cooldown(tiny_config, tmp_path) -> None:
    config = tiny_config(schedule={"kind": "wsd", "cooldown_budgets": [5120.0]})
    record = run_point(config).record
    assert record.status == "finished"
    assert [p.n_tokens for p in record.points] == [5120, 10_240]
    assert record.points[0].loss > record.points[1].loss
    # the branch is undone exactly: the main line ends where a WSD run without the extra cooldown ends
    plain = run_point(tiny_config(results=tmp_path / "plain", schedule={"kind": "wsd"})).record
    assert [p.n_tokens for p in plain.points] == [10_240]
    assert record.points[1].loss == pytest.approx(plain.points[0].loss, abs=1e-6)
    assert [p.loss for p in record.curve] == pytest.approx([p.loss for p in plain.curve], abs=1e-6)


def test_wsd_run_resumes_after_its_branch_with_the_same_points(tiny_config, tmp_path) -> None:
    wsd = {"kind": "wsd", "cooldown_budgets": [5120.0]}
    straight = run_point(tiny_config(results=tmp_path / "a", schedule=wsd)).record
    crashing = tiny_config(results=tmp_path / "b", schedule=wsd, debug={"crash_at_step": 30, "progress": False})
    assert run_point(crashing).record.status == "failed"
    resumed = run_point(tiny_config(results=tmp_path / "b", schedule=wsd, retry_failed=True)).record
    assert [p.n_tokens for p in resumed.points] == [5120, 10_240]
    assert [p.loss for p in resumed.points] == pytest.approx([p.loss for p in straight.points], abs=1e-5)


def _sweep(*configs) -> Sweep:
    return Sweep(tuple(GridPoint(overrides=(f"budget.value={c.budget.value:g}",), config=c) for c in configs))


def test_a_sweep_plans_runs_collects_and_on_relaunch_skips_its_points(tiny_config, tmp_path) -> None:
    sweep = _sweep(tiny_config(budget={"value": 2560}), tiny_config(budget={"value": 5120}))
    dry_run = sweep.dry_run(probe=False)
    assert [outcome.action for outcome in sweep.run()] == ["trained", "trained"]
    records = [read_record(record_path(p.config.paths.results_dir, p.config.sweep, p.config.run_id()))
               for p in sweep.points]  # fmt: skip
    assert [r.status for r in records] == ["finished", "finished"]
    assert list(dry_run.n_tokens) == [r.n_tokens for r in records]  # the dry run plans what the runs train
    assert sweep.failures() == []
    assert sweep.stores() == [tmp_path / "results" / "default"]
    written = sweep.collect(tmp_path / "table")
    table = pd.read_parquet(written["points_parquet"])
    assert sorted(table.run_id) == sorted(r.run_id for r in records)
    assert [outcome.action for outcome in sweep.run()] == ["skipped-finished", "skipped-finished"]


def test_a_failed_point_is_named_until_a_retry_resumes_it(tiny_config) -> None:
    good = tiny_config(budget={"value": 2560})
    crashing = tiny_config(budget={"value": 5120}, debug={"crash_at_step": 10, "progress": False})
    sweep = _sweep(good, crashing)
    assert [outcome.action for outcome in sweep.run()] == ["trained", "trained"]
    path = record_path(crashing.paths.results_dir, crashing.sweep, crashing.run_id())
    assert read_record(path).status == "failed"
    assert sweep.failures() == [(path, "failed")]
    assert [outcome.action for outcome in sweep.run()] == ["skipped-finished", "skipped-failed"]
    retry = _sweep(good, tiny_config(budget={"value": 5120}, retry_failed=True))
    outcomes = retry.run()
    assert [outcome.action for outcome in outcomes] == ["skipped-finished", "resumed"]
    assert outcomes[1].record is not None and outcomes[1].record.status == "finished"
    assert retry.failures() == [] and sweep.failures() == []  # the point's identity ignores debug and retry


def test_failures_name_a_point_without_a_record_unless_another_launch_holds_it(tiny_config) -> None:
    sweep = _sweep(tiny_config(budget={"value": 2560}))
    (folder,) = sweep.run_folders()
    assert sweep.failures() == [(folder, f"{REFUSED}: no record")]
    folder.mkdir(parents=True)
    with FileLock(folder / LOCK_NAME, timeout=0):  # another launch trains this point
        assert sweep.failures() == []
    assert sweep.failures() == [(folder, f"{REFUSED}: no record")]


def test_only_the_free_locks_of_folders_this_launch_created_are_released(tiny_config) -> None:
    sweep = _sweep(tiny_config(budget={"value": 2560}), tiny_config(budget={"value": 5120}))
    created, existing = sweep.run_folders()
    for folder in (created, existing):
        folder.mkdir(parents=True)
        (folder / LOCK_NAME).touch()
    with FileLock(created / LOCK_NAME, timeout=0):  # held: its holder may still train there
        sweep.release_unused_locks({created.absolute()})
    assert (created / LOCK_NAME).exists()
    sweep.release_unused_locks({created.absolute()})
    assert not (created / LOCK_NAME).exists() and (existing / LOCK_NAME).exists()
