"""sl-dashboard through its real console entry point: the specification it writes offline, and its bad command lines
(exit status 2, one ``error:`` line naming the field, nothing left behind, no credential shown)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scaling_lab.dashboards import DashboardConfig, build_dashboard, specification

from .conftest import run_cli
from .test_bad_inputs import Case, _fill, prepare, problems_of, snapshot

PLANTED_KEY = "0123456789abcdef0123456789abcdefc0ffee42"  # shaped like a wandb API key (40 hex)
GOOD = ("entity=my-team", "project=scaling_lab", "sweeps=[mix_a,mix_b]")


def without_credentials(tmp: Path) -> dict[str, str]:
    """No WANDB_API_KEY and a netrc file that does not exist: no wandb credentials at all."""
    return {"WANDB_API_KEY": "", "NETRC": str(tmp / "no-netrc"), "HOME": str(tmp)}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("sweeps=[mix_a,mix_b]", "kind=report", "domains=[prose]"),
         {"sweeps": ("mix_a", "mix_b"), "kind": "report", "domains": ("prose",)}),
        (("sweeps=quickstart",), {"sweeps": ("quickstart",)}),  # one name alone: one sweep, the default domains
    ],
)  # fmt: skip
def test_out_writes_the_specification_offline(tmp_path: Path, args: tuple[str, ...], expected: dict) -> None:
    done = run_cli("dashboard", *GOOD[:2], *args, "out=dash/spec.json", cwd=tmp_path, env=without_credentials(tmp_path))
    assert done.returncode == 0, done.stderr
    kind = expected.get("kind", "workspace")
    assert done.stdout.strip() == f"wrote the {kind} specification to dash/spec.json" and not done.stderr
    written = json.loads((tmp_path / "dash" / "spec.json").read_text())
    config = DashboardConfig(entity="my-team", project="scaling_lab", out="unused", **expected)
    assert written == json.loads(json.dumps(specification(build_dashboard(config))))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dash"]  # no Hydra folders, no logs


CASES = [
    Case(name="no-sweeps", cli="dashboard", args=(*GOOD[:2], "sweeps=[]", "out={tmp}/d.json"),
         names=("sweeps is empty",)),
    Case(name="sweeps-missing", cli="dashboard", args=(*GOOD[:2], "out={tmp}/d.json"), names=("sweeps",)),
    Case(name="entity-missing", cli="dashboard", args=(*GOOD[1:], "out={tmp}/d.json"), names=("entity",)),
    Case(name="bad-kind", cli="dashboard", args=(*GOOD, "kind=dashboard", "out={tmp}/d.json"),
         names=("kind='dashboard'", "workspace, report")),
    Case(name="sweep-with-equals", cli="dashboard", args=(*GOOD[:2], "sweeps=[lr=3e-3]", "out={tmp}/d.json"),
         names=("lr=3e-3",)),
    Case(name="union-as-domain", cli="dashboard", args=(*GOOD, "domains=[all]", "out={tmp}/d.json"),
         names=("domains has 'all'",)),
    Case(name="save-not-a-boolean", cli="dashboard", args=(*GOOD, "save=maybe"), names=("save",)),
    Case(name="nothing-to-do", cli="dashboard", args=GOOD, names=("out=FILE", "save=true")),
    Case(name="save-without-a-key", cli="dashboard", args=(*GOOD, "save=true", "out={tmp}/new/d.json"),
         names=("save=true needs wandb credentials", "WANDB_API_KEY")),
    Case(name="out-is-a-folder", cli="dashboard", args=(*GOOD, "out={tmp}"), names=("out={tmp}", "is a folder")),
    Case(name="unknown-key", cli="dashboard", args=(*GOOD, "out={tmp}/d.json", "colour=red"), names=("'colour'",)),
    Case(name="credential-as-sweep", cli="dashboard", args=(*GOOD[:2], f"sweeps=[{PLANTED_KEY}]", "out={tmp}/d.json"),
         names=("sweeps[0]=<redacted> holds a credential",)),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_bad_command_line_ends_in_one_error_line_exit_2_and_writes_nothing(tmp_path: Path, case: Case) -> None:
    tmp = prepare(tmp_path / case.name, case.files)
    before = snapshot(tmp)
    env = {**without_credentials(tmp_path), "WANDB_API_KEY": PLANTED_KEY} if "credential" in case.name else None
    done = run_cli(case.cli, *(_fill(arg, tmp) for arg in case.args), cwd=tmp, env=env or without_credentials(tmp_path))
    assert not problems_of(case, tmp, before, done), problems_of(case, tmp, before, done)
    assert PLANTED_KEY not in done.stdout + done.stderr


def test_a_save_wandb_refuses_is_one_line_without_the_key_and_writes_nothing(tmp_path: Path) -> None:
    # a key, but nothing answers at WANDB_BASE_URL (a closed local port): wandb's own error becomes the one line
    tmp = prepare(tmp_path / "case")
    before = snapshot(tmp)
    env = {**without_credentials(tmp_path), "WANDB_API_KEY": PLANTED_KEY, "WANDB_BASE_URL": "http://127.0.0.1:9",
           "WANDB_CONFIG_DIR": str(tmp_path / "config"), "WANDB_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    case = Case(name="save-refused", cli="dashboard", args=(*GOOD, "save=true", "out={tmp}/new/d.json"),
                names=("wandb did not save the workspace to my-team/scaling_lab", "out=FILE"))  # fmt: skip
    done = run_cli("dashboard", *(_fill(arg, tmp) for arg in case.args), cwd=tmp, env=env, timeout=300)
    assert not problems_of(case, tmp, before, done), problems_of(case, tmp, before, done)
    assert PLANTED_KEY not in done.stdout + done.stderr
