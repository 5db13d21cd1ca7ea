"""Bad files in a results store and bad fit.json files, through the real console entry points in subprocesses.

A run.json that cannot be used — not readable, not UTF-8, not JSON, of the wrong shape or field, of a newer schema, or
not this folder's record (copied from another grid point or sweep, or edited so that its config_hash is not its
config's) — is skipped with one ``warning:`` line naming it: sl-collect and sl-fit use the other records and leave the
store as it was; a relaunched sl-train moves it to run.json.rejected and trains its point. A collect with nothing to
collect, and a fit.json of the wrong shape given to sl-budget, end in one ``error:`` line naming the input, exit 2,
nothing written. Cases run two at a time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from scaling_lab.cli import CONFIGS_DIR
from scaling_lab.cli.compose import register_configs
from scaling_lab.config.schema import run_config_from_dict
from scaling_lab.fitting.laws import BESIROGLU_2024, CHINCHILLA_APPROACH3
from scaling_lab.fitting.synthetic import isoflop_table
from scaling_lab.results import RunRecord, read_record, record_path, write_record
from scaling_lab.sweep.sweep import LOCK_NAME

from .conftest import load_helpers, run_cli
from .test_bad_inputs import TEXT, TINY_TRAIN, Case, problems_of, snapshot

# ----------------------------------------------------------------------------------------------------------------
# Planted run.json files


def _json(data: Any) -> bytes:
    return json.dumps(data, allow_nan=True).encode()


Content = Callable[[dict[str, Any], dict[str, Any]], bytes | None]
"""The planted file's bytes from the record that belongs in its folder (``own``) and another grid point's record
(``foreign``); None plants a folder named run.json."""


def _edited(**changes: Any) -> Content:
    """``own`` with values replaced at ``__``-separated paths (``points__0__loss``)."""

    def content(own: dict[str, Any], foreign: dict[str, Any]) -> bytes:
        data = json.loads(json.dumps(own))
        for dotted, value in changes.items():
            node = data
            *parents, last = dotted.split("__")
            for part in parents:
                node = node[int(part)] if part.isdigit() else node[part]
            node[last] = value
        return _json(data)

    return content


@dataclass(frozen=True, kw_only=True)
class Planted:
    """One bad run.json: its content and what the warning must name besides the file."""

    name: str
    """Test id, and the run folder it is planted in for the collect cases."""
    content: Content
    names: tuple[str, ...]
    """Substrings of the warning's entry for this file: the field or the fault."""


PLANTED = [
    Planted(name="binary", content=lambda own, foreign: bytes(range(256)), names=("not UTF-8",)),
    Planted(name="latin-1", names=("not UTF-8",),
            content=lambda own, foreign: json.dumps({**own, "data_mix": "café"}, ensure_ascii=False).encode("latin-1")),
    Planted(name="empty", content=lambda own, foreign: b"", names=("not valid JSON",)),
    Planted(name="truncated", content=lambda own, foreign: _json(own)[:200], names=("not valid JSON",)),
    Planted(name="folder", content=lambda own, foreign: None, names=("cannot be read",)),
    Planted(name="list", content=lambda own, foreign: _json([own]), names=("must be an object",)),
    Planted(name="newer-schema", content=_edited(schema_version=99), names=("schema_version=99",)),
    Planted(name="wrong-type", content=_edited(n_tokens="ten thousand"), names=("n_tokens",)),
    Planted(name="unknown-field", content=_edited(colour="blue"), names=("colour",)),
    Planted(name="nan-loss", content=_edited(points__0__loss=math.nan), names=("points[0].loss",)),
    Planted(name="missing-field", content=lambda own, foreign: _json({k: v for k, v in own.items() if k != "seed"}),
            names=("missing field seed",)),
    Planted(name="another-points-record", content=lambda own, foreign: _json(foreign), names=("field run_id=",)),
    Planted(name="another-sweeps-record", content=_edited(sweep="elsewhere"), names=("field sweep='elsewhere'",)),
    Planted(name="tampered-config-hash", content=_edited(config_hash="0123456789abcdef"),
            names=("config_hash='0123456789abcdef'", "not the hash of the record's config")),
    Planted(name="edited-config", content=_edited(config__optim__lr=1.0),
            names=("not the hash of the record's config",)),
]  # fmt: skip
BY_NAME = {case.name: case for case in PLANTED}


def _plant(path: Path, case: Planted, own: dict[str, Any], foreign: dict[str, Any]) -> bytes | None:
    content = case.content(own, foreign)
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return content


def _one_line(done: CompletedProcess[str], prefix: str) -> str:
    """The one stderr line, which starts with ``prefix``; no traceback anywhere."""
    assert "Traceback" not in done.stdout + done.stderr, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), done.stderr[-3000:]
    return lines[0]


def _entry(warning: str, path: Path, root: Path) -> str:
    """The part of a "skipped N run record(s): <file>: <why>; <file>: <why>" line about ``path``."""
    assert f"{path}: " in warning, (path, warning)
    return warning.split(f"{path}: ", 1)[1].split(f"; {root}", 1)[0]


def _in_parallel(function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(function, items))


# ----------------------------------------------------------------------------------------------------------------
# sl-collect and sl-fit skip a bad file with one warning and leave the store as it was


def _store(root: Path, records: ModuleType, cases: list[Planted]) -> None:
    """Two good records (g0, g1) and each case's file as the record of a run named after the case."""
    for run_id in ("g0", "g1"):
        write_record(RunRecord(**records.record_fields(run_id=run_id)), root)
    foreign = RunRecord(**records.record_fields(run_id="g0")).to_dict()  # a copy of g0 in another folder
    for case in cases:
        own = RunRecord(**records.record_fields(run_id=case.name)).to_dict()
        _plant(record_path(root, "tiny", case.name), case, own, foreign)


def _collect_problems(case_sets: list[list[Planted]], tmp_path: Path, records: ModuleType) -> None:
    """sl-collect over a store of g0, g1 and each set's planted files: exit 0, one warning naming every planted file
    and its fault, a table of g0 and g1 only, the store untouched."""

    def run(index: int) -> tuple[int, CompletedProcess[str], dict[str, bytes | None]]:
        tmp = tmp_path / str(index)
        _store(tmp / "results", records, case_sets[index])
        before = snapshot(tmp / "results")
        done = run_cli("collect", f"stores=[{tmp / 'results'}]", f"out={tmp / 'out' / 'table'}", cwd=tmp)
        return index, done, before

    for index, done, before in _in_parallel(run, list(range(len(case_sets)))):
        tmp, cases = tmp_path / str(index), case_sets[index]
        assert done.returncode == 0, done.stderr[-3000:]
        warning = _one_line(done, f"warning: skipped {len(cases)} run record(s): ")  # once, not per table
        for case in cases:
            entry = _entry(warning, record_path(tmp / "results", "tiny", case.name), tmp / "results")
            assert all(name in entry for name in case.names), (case.name, entry)
        assert sorted(pd.read_csv(tmp / "out" / "table.csv")["run_id"]) == ["g0", "g1"]
        assert sorted(pd.read_parquet(tmp / "out" / "table_curves.parquet")["run_id"].unique()) == ["g0", "g1"]
        assert snapshot(tmp / "results") == before  # nothing moved, rewritten or added in the store


def test_collect_skips_every_kind_of_bad_record_in_one_warning_and_collects_the_rest(
    tmp_path: Path, records: ModuleType
) -> None:
    _collect_problems([PLANTED], tmp_path, records)


@pytest.mark.slow
def test_collect_skips_each_kind_of_bad_record_alone_with_one_warning(tmp_path: Path, records: ModuleType) -> None:
    _collect_problems([[case] for case in PLANTED], tmp_path, records)


def test_fit_of_a_store_skips_a_binary_and_a_copied_record_with_one_warning(tmp_path: Path) -> None:
    fitting = load_helpers("fitting/conftest.py")
    table = isoflop_table(CHINCHILLA_APPROACH3, budgets=fitting.BUDGETS)
    root = fitting.write_store(tmp_path / "results", table, sweep="grid")
    binary, copied = record_path(root, "grid", "binary"), record_path(root, "grid", "copied")
    _plant(binary, BY_NAME["binary"], {}, {})
    copied.parent.mkdir()
    copied.write_bytes(record_path(root, "grid", "run0").read_bytes())  # run0's record in another point's folder
    before = snapshot(root)
    done = run_cli("fit", f"input={root}", f"out={tmp_path / 'fit'}", "approaches=[approach3]", "figures=false",
                   "fit.extrapolation.holdout_budgets=0", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    warning = _one_line(done, "warning: skipped 2 run record(s): ")
    assert "not UTF-8" in _entry(warning, binary, root) and "field run_id='run0'" in _entry(warning, copied, root)
    assert json.loads((tmp_path / "fit" / "fit.json").read_text())["approach3"]["n_points"] == len(table)
    assert snapshot(root) == before


# ----------------------------------------------------------------------------------------------------------------
# sl-collect with nothing to collect: one error line, exit 2, nothing written


def _collect(name: str, stores: str, names: tuple[str, ...]) -> Case:
    """An sl-collect case: ``stores`` is its stores= argument; ``{tmp}`` is the case's folder."""
    return Case(name=name, cli="collect", args=(f"stores={stores}", "out={tmp}/out/t"), names=names)


COLLECT_ERRORS = [
    _collect("no-stores", "[]", ("stores=[]",)),
    _collect("missing-store", "[{tmp}/nowhere]", ("{tmp}/nowhere", "no such results directory")),
    _collect("empty-store", "[{tmp}/empty]", ("{tmp}/empty", "no usable run.json")),
    _collect("empty-beside-good", "[{tmp}/good,{tmp}/empty]", ("{tmp}/empty ",)),
    _collect("only-bad-records", "[{tmp}/bad]",  # the skipped files are in the error line
             ("{tmp}/bad holds no usable run.json", "{tmp}/bad/tiny/binary/run.json: not UTF-8")),
    _collect("nothing-finished", "[{tmp}/running]", ("no run with status finished",)),
]  # fmt: skip


def _collect_error_stores(tmp: Path, records: ModuleType) -> None:
    (tmp / "empty").mkdir(parents=True)
    write_record(RunRecord(**records.record_fields(run_id="g0")), tmp / "good")
    _plant(record_path(tmp / "bad", "tiny", "binary"), BY_NAME["binary"], {}, {})
    running = records.record_fields(run_id="r0", status="running", finished_at=None, points=[], n_tokens=0)
    write_record(RunRecord(**running), tmp / "running")


@pytest.mark.parametrize("case", COLLECT_ERRORS, ids=lambda case: case.name)
def test_collect_with_nothing_to_collect_is_one_error_line_and_writes_nothing(
    case: Case, tmp_path: Path, records: ModuleType
) -> None:
    _collect_error_stores(tmp_path, records)
    before = snapshot(tmp_path)
    done = run_cli(case.cli, *(arg.replace("{tmp}", str(tmp_path)) for arg in case.args), cwd=tmp_path)
    # one error line naming the stores, exit 2, no traceback; no table, no out folder, the stores untouched
    assert not (found := problems_of(case, tmp_path, before, done)), found


# ----------------------------------------------------------------------------------------------------------------
# A relaunched sl-train moves a bad record aside (one warning) and trains its point


def _train_args(shared: Path, results: Path, budget: str) -> list[str]:
    """TINY_TRAIN with one text and data cache for every case (the text's path is part of the run_id, the results
    folder is not: every case's point has the same run_id) and the case's own results folder."""
    args = [arg.replace("{tmp}/results", str(results)).replace("{tmp}", str(shared)) for arg in TINY_TRAIN]
    return [arg for arg in args if not arg.startswith("budget.value=")] + [f"budget.value={budget}"]


def _record_path_of(args: list[str]) -> Path:
    """Where sl-train with ``args`` keeps its record: the real config's run_id under its results folder."""
    register_configs()
    with initialize_config_dir(config_dir=CONFIGS_DIR, version_base="1.3"):
        cfg = compose("sl_train", overrides=args)
    config = run_config_from_dict(OmegaConf.to_container(cfg, resolve=True))
    return record_path(config.paths.results_dir, config.sweep, config.run_id())


@dataclass(frozen=True)
class Trained:
    shared: Path
    own: dict[str, Any]
    """The real record of the point every case relaunches (budget 2048)."""
    foreign: dict[str, Any]
    """The real record of another point of the same sweep (budget 4096)."""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Two real points trained once (one multirun) in a store of their own."""
    shared = tmp_path_factory.mktemp("relaunch")
    (shared / "text.txt").write_text(TEXT["text.txt"])
    done = run_cli("train", "-m", *_train_args(shared, shared / "results", "2048,4096"), cwd=shared, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    own, foreign = (_record_path_of(_train_args(shared, shared / "results", budget)) for budget in ("2048", "4096"))
    return Trained(shared=shared, own=json.loads(own.read_text()), foreign=json.loads(foreign.read_text()))


def _relaunch_problems(cases: list[Planted], tmp_path: Path, trained: Trained) -> None:
    """Plant each case's file as the record of the 2048-token point, relaunch it: exit 0, one warning naming the
    file and its fault, the file moved to run.json.rejected unchanged, and the point trained with its own record."""

    planted = []
    for case in cases:  # composed one at a time: Hydra's compose API is not thread-safe
        args = _train_args(trained.shared, tmp_path / case.name / "results", "2048")
        path = _record_path_of(args)
        planted.append((case, args, path, _plant(path, case, trained.own, trained.foreign)))

    def run(item: tuple[Planted, list[str], Path, bytes | None]) -> CompletedProcess[str]:
        case, args, _, _ = item
        return run_cli("train", *args, cwd=tmp_path / case.name, timeout=600)

    for (case, _, path, content), done in zip(planted, _in_parallel(run, planted), strict=True):
        assert done.returncode == 0, (case.name, done.stderr[-3000:])
        warning = _one_line(done, f"warning: {path}: ")
        assert all(name in warning for name in case.names), (case.name, warning)
        assert warning.endswith(f"moved it to run.json.rejected and training bad/{path.parent.name} again")
        aside = path.with_name("run.json.rejected")
        assert aside.is_dir() if content is None else aside.read_bytes() == content  # kept as it was
        record = read_record(path)  # the point's own record now: it belongs in its folder
        assert record.status == "finished" and record.run_id == path.parent.name == trained.own["run_id"]
        assert sorted(p.name for p in path.parent.iterdir()) == sorted(["run.json", "run.json.rejected", LOCK_NAME])


def test_relaunch_trains_a_point_whose_folder_holds_another_points_record(tmp_path: Path, trained: Trained) -> None:
    _relaunch_problems([BY_NAME["another-points-record"]], tmp_path, trained)


def test_relaunched_sweep_warns_once_per_bad_record_and_trains_those_points(tmp_path: Path, trained: Trained) -> None:
    # The usual relaunch is a multirun: each point's warning is one line there too.
    bad = {"2048": BY_NAME["tampered-config-hash"], "4096": BY_NAME["binary"]}
    paths, contents = {}, {}
    for budget, case in bad.items():
        paths[budget] = _record_path_of(_train_args(trained.shared, tmp_path / "results", budget))
        contents[budget] = _plant(paths[budget], case, trained.own if budget == "2048" else trained.foreign, {})
    done = run_cli("train", "-m", *_train_args(trained.shared, tmp_path / "results", "2048,4096"), cwd=tmp_path,
                   timeout=600)  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stdout + done.stderr, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("warning: ") for line in lines), done.stderr[-3000:]
    for (budget, case), line in zip(bad.items(), lines, strict=True):
        assert line.startswith(f"warning: {paths[budget]}: ") and all(name in line for name in case.names), line
        assert paths[budget].with_name("run.json.rejected").read_bytes() == contents[budget]
        assert read_record(paths[budget]).status == "finished"


@pytest.mark.slow
def test_relaunch_trains_a_point_whatever_is_wrong_with_its_record(tmp_path: Path, trained: Trained) -> None:
    _relaunch_problems(PLANTED, tmp_path, trained)


def test_relaunch_skips_a_point_whose_real_record_belongs(tmp_path: Path, trained: Trained) -> None:
    # The real trainer's records pass the store's checks: their config_hash is recomputed from the stored config.
    args = _train_args(trained.shared, tmp_path / "results", "2048")
    path = _record_path_of(args)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(trained.own))
    done = run_cli("train", *args, cwd=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr[-3000:]
    assert f"skip bad/{path.parent.name}: finished record" in done.stdout
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]


# ----------------------------------------------------------------------------------------------------------------
# fit.json of the wrong shape given to sl-budget or sl-verify: one error line naming the file and the field, exit 2


GOOD_FIT = {"approach3": {**BESIROGLU_2024.to_dict(), "bootstrap_samples": [BESIROGLU_2024.to_dict()] * 3},
            "n_params_column": "n_params_total", "flops_column": "flops_exact", "max_flops": 1e8}  # fmt: skip


def _with(**approach3: Any) -> bytes:
    return _json({**GOOD_FIT, "approach3": {**GOOD_FIT["approach3"], **approach3}})


FIT_JSON_CASES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "list": (_json([GOOD_FIT]), ("the top level is a list",)),
    "string": (_json("fit"), ("the top level is a string",)),
    "bootstrap-samples-object": (_with(bootstrap_samples={"E": 1.0}), ("approach3.bootstrap_samples is an object",)),
    "bootstrap-sample-number": (_with(bootstrap_samples=[1.5]), ("approach3.bootstrap_samples[0] is a number",)),
    "bootstrap-sample-missing-beta": (_with(bootstrap_samples=[{"E": 1.0, "A": 1.0, "B": 1.0, "alpha": 0.3}]),
                                      ("approach3.bootstrap_samples[0].beta is missing",)),
    "missing-alpha": (_json({"approach3": {k: v for k, v in GOOD_FIT["approach3"].items() if k != "alpha"}}),
                      ("approach3.alpha is missing",)),
    "text-E": (_with(E="1.8"), ("approach3.E is a string",)),
    "boolean-beta": (_with(beta=True), ("approach3.beta is a boolean",)),
    "negative-A": (_with(A=-1.0), ("approach3", "ChinchillaLaw.A")),
    "nan-B": (_with(B=math.nan), ("approach3", "ChinchillaLaw.B")),
    "overflowing-frontier": (_with(A=1e308), ("approach3",)),
    "no-approach3": (_json({"approach2": {"a": 0.5}}), ("no 'approach3' object",)),
    "n-params-column-number": (_json({**GOOD_FIT, "n_params_column": 5}), ("n_params_column is a number",)),
    "binary": (bytes(range(256)), ("not UTF-8",)),
    "latin-1": ('{"approach3": "café"}'.encode("latin-1"), ("not UTF-8",)),
    "empty": (b"", ("not valid JSON",)),
    "nested-too-deep": (b"[" * 100_000, ("not a JSON document",)),
}  # fmt: skip
QUICK_FIT_JSON = ("list", "bootstrap-samples-object", "missing-alpha", "text-E", "binary")
FRONTIER = {"k_n": 0.1, "a": 0.5}


def _with_block(**blocks: Any) -> bytes:
    return _json({**GOOD_FIT, **blocks})


VERIFY_FIT_JSON_CASES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    # the fields only sl-verify reads: approaches 1 and 2, why sl-fit skipped an approach, the interval level
    "approach2-list": (_with_block(approach2=[FRONTIER]), ("approach2 is a list",)),
    "approach2-text-k_n": (_with_block(approach2={**FRONTIER, "k_n": "0.1"}), ("approach2.k_n is a string",)),
    "approach2-missing-a": (_with_block(approach2={"k_n": 0.1}), ("approach2.a is missing",)),
    "approach1-nan-a": (_with_block(approach1={**FRONTIER, "a": math.nan}), ("approach1.a=nan", "finite")),
    "approach1-negative-k_n": (_with_block(approach1={**FRONTIER, "k_n": -1}), ("approach1.k_n=-1", "positive")),
    "approach2-budgets-string": (_with_block(approach2={**FRONTIER, "budgets": "all"}),
                                 ("approach2.budgets is a string",)),
    "approach2-budget-loss-list": (_with_block(approach2={**FRONTIER, "budgets": [
        {"flops": 1e8, "loss_opt": [3.0], "used": True}]}), ("approach2.budgets[0].loss_opt is a list",)),
    "approach1-envelope-number": (_with_block(approach1={**FRONTIER, "envelope": [3.0]}),
                                  ("approach1.envelope[0] is a number",)),
    "approach1-sample-missing-k_n": (_with_block(approach1={**FRONTIER, "bootstrap_samples": [{"a": 0.5}]}),
                                     ("approach1.bootstrap_samples[0].k_n is missing",)),
    "approach2-curve-list": (_with_block(approach2={**FRONTIER, "curve": ["cubic"]}), ("approach2.curve is a list",)),
    "skipped-list": (_with_block(skipped=["approach1"]), ("skipped is a list",)),
    "skipped-reason-number": (_with_block(skipped={"approach1": 3}), ("skipped.approach1 is a number",)),
    "ci-level-text": (_with(ci_level="0.9"), ("approach3.ci_level is a string",)),
    "ci-level-above-one": (_with(ci_level=95), ("approach3.ci_level=95", "between 0 and 1")),
    "bootstrap-list": (_with_block(bootstrap=[0.95]), ("bootstrap is a list",)),
}  # fmt: skip


def _budget_problems(names: list[str], tmp_path: Path) -> None:
    def run(name: str) -> tuple[str, CompletedProcess[str]]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "fit.json").write_bytes(FIT_JSON_CASES[name][0] if name != "good" else _json(GOOD_FIT))
        return name, run_cli("budget", f"law={tmp_path / name / 'fit.json'}", "flops=1e20", cwd=tmp_path / name)

    for name, done in _in_parallel(run, ["good", *names]):
        if name == "good":  # the same reader plans from a fit.json of the right shape
            assert done.returncode == 0 and "N_opt (params)" in done.stdout and done.stderr == "", done.stderr
            continue
        assert done.returncode == 2, (name, done.stderr[-3000:])
        error = _one_line(done, f"error: {tmp_path / name / 'fit.json'}: ")
        assert all(part in error for part in FIT_JSON_CASES[name][1]), (name, error)
        assert [p.name for p in (tmp_path / name).iterdir()] == ["fit.json"]  # nothing written beside it


def test_a_fit_json_of_the_wrong_shape_is_one_error_line_naming_the_field(tmp_path: Path) -> None:
    _budget_problems(list(QUICK_FIT_JSON), tmp_path)


@pytest.mark.slow
def test_every_malformed_fit_json_is_one_error_line_naming_the_field(tmp_path: Path) -> None:
    _budget_problems(list(FIT_JSON_CASES), tmp_path)


@pytest.mark.parametrize("name", ["list", "bootstrap-samples-object", "text-E"])
def test_sl_verify_refuses_a_fit_json_of_the_wrong_shape(name: str, tmp_path: Path, trained: Trained) -> None:
    # sl-verify reads fit.json through the same reader as sl-budget (a dry run: nothing trains, nothing is written)
    (tmp_path / "fit.json").write_bytes(FIT_JSON_CASES[name][0])
    before = snapshot(trained.shared)
    done = run_cli("verify", f"fit_json={tmp_path / 'fit.json'}", f"store={trained.shared / 'results' / 'bad'}",
                   f"out={tmp_path / 'out'}", "--dry-run", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2
    error = _one_line(done, f"error: {tmp_path / 'fit.json'}: ")
    assert all(part in error for part in FIT_JSON_CASES[name][1]), error
    assert [p.name for p in tmp_path.iterdir()] == ["fit.json"] and snapshot(trained.shared) == before


def test_sl_verify_refuses_approach_blocks_of_the_wrong_shape(tmp_path: Path, trained: Trained) -> None:
    # approaches 1 and 2, skipped and the interval level are read through the same reader module as approach 3
    before = snapshot(trained.shared)

    def run(name: str) -> tuple[str, CompletedProcess[str]]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "fit.json").write_bytes(VERIFY_FIT_JSON_CASES[name][0])
        return name, run_cli("verify", f"fit_json={tmp_path / name / 'fit.json'}",
                             f"store={trained.shared / 'results' / 'bad'}", f"out={tmp_path / name / 'out'}",
                             "--dry-run", cwd=tmp_path / name)  # fmt: skip

    for name, done in _in_parallel(run, list(VERIFY_FIT_JSON_CASES)):
        assert done.returncode == 2, (name, done.stderr[-3000:])
        error = _one_line(done, f"error: {tmp_path / name / 'fit.json'}: ")
        assert all(part in error for part in VERIFY_FIT_JSON_CASES[name][1]), (name, error)
        assert [p.name for p in (tmp_path / name).iterdir()] == ["fit.json"]
    assert snapshot(trained.shared) == before
