"""Bad command lines through the real console entry points: exit status, one ``error:`` line, nothing left behind.

A table of Hydra's own failures (an unknown key, an override the grammar rejects, a missing config group option, a
YAML syntax error in a sweep or config group file, an interpolation that does not resolve), flags argparse rejects,
an empty grid, and bad input found after Hydra started (a data path that names no file), for all five CLIs
(sl-train, sl-plan, sl-fit, sl-collect, sl-budget). Each case runs in its own folder, snapshotted before and after:
whatever the failed start wrote must be gone, and what was there before untouched. Then sweeps whose points fail
(exit 1, one summary line, the good points recorded) under both local launchers, and bugs that keep their
traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scaling_lab.cli.app import absent_paths, remove_created
from scaling_lab.results import read_record

from .conftest import run_cli
from .test_bad_inputs import GOOD_CSV, TINY_TRAIN, Case, _fill, prepare, problems_of, run_cases, snapshot

BROKEN_SWEEP = "# @package _global_\nhydra:\n  sweeper:\n    params:\n      model: n1k,n3k\n   seed: [\n"
"""A sweep file whose last line is indented wrongly (PyYAML: expected <block end>)."""
BROKEN_GROUP = "preset: n1k\n  width: [\n"
"""A config group file with a mapping value where none is allowed."""
SEARCH = "hydra.searchpath=[file://{tmp}/conf]"
BAD_DATA = tuple(arg.replace("text.txt", "nowhere.txt") for arg in TINY_TRAIN)


CASES = [
    # Hydra's own messages, at every entry point
    Case(name="train-unknown-key", cli="train", args=(*TINY_TRAIN, "foo=1"), names=("'foo'", "+foo=1")),
    Case(name="train-unknown-nested-key", cli="train", args=(*TINY_TRAIN, "optim.nonexistent=3"),
         names=("'optim.nonexistent'", "+optim.nonexistent=3")),
    # a renamed setting names its new name, as an override and as an appended key
    Case(name="train-renamed-key", cli="train", args=(*TINY_TRAIN, "data.eval_tokens=256"),
         names=("'data.eval_tokens'", "renamed", "data.eval_bytes")),
    Case(name="train-renamed-key-appended", cli="train", args=(*TINY_TRAIN, "+data.eval_tokens=256"),
         names=("data.eval_tokens was renamed", "data.eval_bytes")),
    Case(name="train-grammar", cli="train", args=(*TINY_TRAIN, "model=["), names=("model=[", "no viable alternative")),
    Case(name="train-missing-option", cli="train", args=(*TINY_TRAIN, "model=nope"), names=("model/nope", "n1k")),
    Case(name="train-wrong-type", cli="train", args=(*TINY_TRAIN, "data.sources=3"), names=("data.sources",)),
    Case(name="train-unresolved-interpolation", cli="train", args=(*TINY_TRAIN, "seed=${oops}"),
         names=("'oops'", "seed")),
    Case(name="train-sweep-file-yaml", cli="train", files={"conf/experiment/broken.yaml": BROKEN_SWEEP},
         args=("-m", *TINY_TRAIN, SEARCH, "experiment=broken"), names=("{tmp}/conf/experiment/broken.yaml", "line 6")),
    Case(name="train-group-file-yaml", cli="train", files={"conf/model/broken.yaml": BROKEN_GROUP},
         args=(*TINY_TRAIN[1:], SEARCH, "model=broken"), names=("{tmp}/conf/model/broken.yaml", "line 2")),
    Case(name="train-sweep-without-m", cli="train", args=(*TINY_TRAIN, "seed=0,1"), names=("seed=0,1", "--multirun")),
    Case(name="train-unknown-flag", cli="train", args=("--bogus", *TINY_TRAIN), names=("--bogus",)),
    Case(name="plan-missing-option", cli="plan", args=("--no-probe", "model=nope"), names=("model/nope",)),
    Case(name="plan-sweep-file-yaml", cli="plan", files={"conf/experiment/broken.yaml": BROKEN_SWEEP},
         args=("--no-probe", SEARCH, "experiment=broken"), names=("{tmp}/conf/experiment/broken.yaml",)),
    Case(name="plan-unknown-flag", cli="plan", args=("--bogus", "model=n1k"), names=("--bogus",)),
    Case(name="fit-unknown-key", cli="fit", files={"t.csv": GOOD_CSV},
         args=("input={tmp}/t.csv", "out={tmp}/fit", "foo=1"), names=("'foo'", "+foo=1")),
    Case(name="fit-grammar", cli="fit", args=("input=[", "out={tmp}/fit"), names=("input=[",)),
    Case(name="fit-missing-option", cli="fit", files={"t.csv": GOOD_CSV},
         args=("input={tmp}/t.csv", "out={tmp}/fit", "fit=nope"), names=("fit/nope", "default")),
    Case(name="fit-group-file-yaml", cli="fit", files={"t.csv": GOOD_CSV, "conf/fit/broken.yaml": BROKEN_GROUP},
         args=("input={tmp}/t.csv", "out={tmp}/fit", SEARCH, "fit=broken"), names=("{tmp}/conf/fit/broken.yaml",)),
    Case(name="fit-required-value", cli="fit", files={"t.csv": GOOD_CSV}, args=("input={tmp}/t.csv",),
         names=("out is required",)),
    Case(name="fit-unresolved-interpolation", cli="fit", files={"t.csv": GOOD_CSV},
         args=("input={tmp}/t.csv", "out=${oops}"), names=("'oops'", "out")),
    Case(name="collect-unknown-key", cli="collect", args=("stores=[{tmp}]", "out={tmp}/t", "foo=1"),
         names=("'foo'",)),
    Case(name="collect-unresolved-interpolation", cli="collect", args=("stores=[${oops}]", "out={tmp}/t"),
         names=("'oops'", "stores")),
    Case(name="budget-unknown-key", cli="budget", args=("flops=1e21", "foo=1"), names=("'foo'", "+foo=1")),
    Case(name="budget-grammar", cli="budget", args=("flops=1e21", "law=["), names=("law=[",)),
    Case(name="budget-wrong-type", cli="budget", args=("flops=1e21", "inference_tokens=many"),
         names=("inference_tokens",)),
    Case(name="budget-unknown-flag", cli="budget", args=("--bogus", "flops=1e21"), names=("--bogus",)),
    # an empty grid, under each local launcher: refused before Hydra writes multirun.yaml
    Case(name="train-empty-grid-sequential", cli="train", args=("-m", *TINY_TRAIN, "seed=range(0,0)"),
         names=("no grid points", "seed=range(0,0)")),
    Case(name="train-empty-grid-joblib", cli="train", args=("-m", *TINY_TRAIN, "seed=range(0,0)", "launcher=local"),
         names=("no grid points",)),
    Case(name="plan-empty-grid", cli="plan", args=("--no-probe", "model=n1k", "seed=range(0,0)"),
         names=("no grid points",)),
    # bad input found once the run started (its data is prepared only after Hydra starts)
    Case(name="train-bad-budget", cli="train", args=(*TINY_TRAIN, "budget.value=-5"), names=("budget.value",)),
    Case(name="train-bad-budget-multirun", cli="train", args=("-m", *TINY_TRAIN, "budget.value=-5,2048"),
         names=("budget.value",)),
    Case(name="train-bad-data-path", cli="train", args=BAD_DATA, names=("nowhere.txt",)),
    # output folders: checked before anything is written
    Case(name="fit-bad-logger", cli="fit", files={"t.csv": GOOD_CSV},
         args=("input={tmp}/t.csv", "out={tmp}/new/fit", "logger.backend=bogus"), names=("logger.backend",)),
    Case(name="fit-missing-table", cli="fit", args=("input={tmp}/absent.csv", "out={tmp}/new/fit"),
         names=("absent.csv",)),
    Case(name="collect-missing-store", cli="collect", args=("stores=[{tmp}/nowhere]", "out={tmp}/new/t"),
         names=("nowhere",)),
    Case(name="plan-out-is-a-folder", cli="plan", args=("--no-probe", "model=n1k", "--out", "{tmp}"),
         names=("--out",)),
]  # fmt: skip


def test_every_bad_command_line_ends_in_one_error_line_exit_2_and_leaves_nothing(tmp_path: Path) -> None:
    folders = {case.name: prepare(tmp_path / case.name, case.files) for case in CASES}
    before = {name: snapshot(folder) for name, folder in folders.items()}
    problems = {case.name: found for case, done in run_cases(CASES, folders)
                if (found := problems_of(case, folders[case.name], before[case.name], done))}  # fmt: skip
    assert not problems, "\n".join(f"{name}: {'; '.join(found)}" for name, found in problems.items())


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def _failing_sweep(tmp_path: Path, launcher: str, *, crash_at_step: int) -> tuple[Path, str]:
    """A two-point sweep (2048 and 4096 tokens) whose runs crash at ``crash_at_step``: it must exit 1 with one
    ``error:`` line; (the case folder, that line)."""
    tmp = prepare(tmp_path / "case")
    args = ("-m", *TINY_TRAIN[:1], *TINY_TRAIN[2:], "budget.value=2048,4096", f"debug.crash_at_step={crash_at_step}",
            f"launcher={launcher}")  # fmt: skip
    done = run_cli("train", *(_fill(arg, tmp) for arg in args), cwd=tmp, timeout=300)
    assert done.returncode == 1, done.stderr[-3000:]
    (line,) = error_lines(done.stderr)
    return tmp, line


@pytest.mark.parametrize("launcher", ["sequential", "local"])
def test_a_sweep_with_a_failing_point_exits_1_with_one_summary_line_and_records_the_good_point(
    tmp_path: Path, launcher: str
) -> None:
    # 2048 tokens are 16 steps and 4096 are 32 (128-token batches): only the larger budget reaches step 20
    tmp, line = _failing_sweep(tmp_path, launcher, crash_at_step=20)
    assert line.startswith("error: 1 of 2 grid points failed: "), line
    by_status = {read_record(path).status: path for path in (tmp / "results" / "bad").glob("*/run.json")}
    assert set(by_status) == {"finished", "failed"}
    assert str(by_status["failed"]) in line and "debug.crash_at_step=20" in read_record(by_status["failed"]).reason
    (logs,) = (tmp / "results" / "bad" / "_hydra").iterdir()
    assert str(logs) in line


@pytest.mark.parametrize("launcher", ["sequential", pytest.param("local", marks=pytest.mark.slow)])
def test_a_sweep_whose_every_point_fails_exits_1_with_one_summary_line(tmp_path: Path, launcher: str) -> None:
    tmp, line = _failing_sweep(tmp_path, launcher, crash_at_step=1)
    assert line.startswith("error: 2 of 2 grid points failed: "), line
    failed = sorted((tmp / "results" / "bad").glob("*/run.json"))
    assert len(failed) == 2 and all(read_record(path).status == "failed" and str(path) in line for path in failed)


@pytest.mark.parametrize("launcher", ["sequential", "local"])
def test_a_sweep_whose_points_are_refused_at_their_start_leaves_nothing_behind(tmp_path: Path, launcher: str) -> None:
    """Every point's data path names no file: found when the point prepares its data, after Hydra started."""
    tmp = prepare(tmp_path / "case")
    before = snapshot(tmp)
    done = run_cli("train", "-m", *(_fill(arg, tmp) for arg in BAD_DATA), "budget.value=2048,4096",
                   f"launcher={launcher}", cwd=tmp, timeout=300)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    (line,) = error_lines(done.stderr)
    assert line.startswith("error: 2 of 2 grid points failed: ") and "nothing was left behind" in line, line
    refused = [line for line in done.stderr.splitlines() if line.startswith("failed: grid point #")]
    assert len(refused) == 2 and all("nowhere.txt" in line for line in refused), done.stderr[-3000:]
    assert snapshot(tmp) == before


BUGS = {
    "a Python error in library code": "import scaling_lab.cli.budget as cli; cli.run_budget = lambda config: 1 / 0",
    "an OmegaConf error in the task's own code": "import scaling_lab.cli.budget as cli; "
                                                 "cli.to_config = lambda cfg: cfg.no_such_key",
}  # fmt: skip


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_a_bug_keeps_its_traceback(tmp_path: Path, bug: str) -> None:
    """The same entry point, with a bug planted in the code it calls: a traceback and exit 1, not one line."""
    script = f"import sys; {BUGS[bug]}; sys.argv = ['sl-budget', 'flops=1e21']; cli.main()"
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "Traceback" in done.stderr and not error_lines(done.stderr), done.stderr


def test_hydra_full_error_shows_hydras_traceback(tmp_path: Path) -> None:
    done = run_cli("budget", "flops=1e21", "foo=1", cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert done.returncode == 1 and "Traceback" in done.stderr and "ConfigCompositionException" in done.stderr


def test_removing_a_failed_start_keeps_what_existed_and_what_others_wrote(tmp_path: Path) -> None:
    shared = tmp_path / "results" / "sweep"
    (shared / "other_run").mkdir(parents=True)
    (shared / "other_run" / "run.json").write_text("{}")
    ours, empty_before = shared / "_hydra" / "2026-01-01_00-00-00", tmp_path / "existing_empty"
    empty_before.mkdir()
    absent = absent_paths([ours, empty_before / "sub", tmp_path / "new" / "deep" / "out"])
    assert absent == {shared / "_hydra", ours, empty_before / "sub", tmp_path / "new", tmp_path / "new" / "deep",
                      tmp_path / "new" / "deep" / "out"}  # fmt: skip
    (ours / ".hydra").mkdir(parents=True)
    (ours / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (tmp_path / "new" / "deep").mkdir(parents=True)
    (tmp_path / "new" / "deep" / "written_meanwhile_by_another_command").write_text("x")
    remove_created(absent, owned=[ours])
    assert not (shared / "_hydra").exists() and empty_before.is_dir()
    assert (shared / "other_run" / "run.json").read_text() == "{}"
    assert (tmp_path / "new" / "deep" / "written_meanwhile_by_another_command").exists()
