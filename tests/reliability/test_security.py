"""Security drills: weights-only checkpoints, no pickle/eval on user input, no secret on disk, no path escape."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest
import torch

import scaling_lab
from scaling_lab.errors import TableError
from scaling_lab.results import RunRecord, write_record
from scaling_lab.train.checkpoint import load_checkpoint, save_checkpoint

from .conftest import run_cli
from .test_bad_inputs import TEXT, TINY_TRAIN

PACKAGE = Path(scaling_lab.__file__).parent


class Payload:
    """Unpickling this runs code: it creates the file named in ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_a_checkpoint_holding_a_pickled_object_is_refused_and_its_code_never_runs(tmp_path: Path) -> None:
    marker, path = tmp_path / "code_ran", tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": {"w": torch.zeros(2)}, "progress": {"payload": Payload(marker)}})
    with pytest.raises(Exception, match=r"[Ww]eights only load failed|Unsupported global"):
        load_checkpoint(path, torch.device("cpu"))
    assert not marker.exists()
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "progress": {"step": 3}})  # plain state still loads
    assert load_checkpoint(path, torch.device("cpu"))["progress"] == {"step": 3}


UNSAFE = {
    "pickle.load": re.compile(r"\b(c?pickle|joblib|dill)\.loads?\("),
    "eval/exec": re.compile(r"(?<![\w.])(eval|exec)\("),
    "torch.load without weights_only=True": re.compile(r"torch\.load\((?![^)]*weights_only=True)[^)]*\)"),
    "yaml.load (unsafe)": re.compile(r"\byaml\.(unsafe_)?load\("),
    "pandas read_pickle": re.compile(r"\bread_pickle\("),
    "numpy load with pickles": re.compile(r"allow_pickle=True"),
}


def test_the_package_never_unpickles_or_evaluates_input() -> None:
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 30
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {name}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for name, pattern in UNSAFE.items()
        if pattern.search(line)
    ]
    assert not found, "\n".join(found)
    assert any("weights_only=True" in path.read_text() for path in sources)  # the checker sees torch.load calls


FAKE_ENV_KEY = "fakeWandbKey0123456789abcdef0123456789abcd"
FAKE_HF_TOKEN = "hf_FakeDrillToken0123456789abcdefghij"
FAKE_CONFIG_TOKEN = "hf_ConfigDrillToken0123456789abcdefgh"


def _files_with(root: Path, secrets: tuple[str, ...]) -> list[str]:
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits += [f"{path.relative_to(root)}: {secret[:12]}..." for secret in secrets if secret.encode() in data]
    return hits


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A real tiny sl-train run (offline wandb) with secrets planted in its environment and in a config override;
    its folder and everything it printed."""
    tmp = tmp_path_factory.mktemp("planted")
    (tmp / "text.txt").write_text(TEXT["text.txt"])
    args = [arg.replace("{tmp}", str(tmp)) for arg in TINY_TRAIN if arg != "logger=none"]
    done = run_cli("train", *args, "logger=wandb", f"logger.tags=[{FAKE_CONFIG_TOKEN}]", cwd=tmp,
                   env={"WANDB_API_KEY": FAKE_ENV_KEY, "HF_TOKEN": FAKE_HF_TOKEN, "HOME": str(tmp),
                        "WANDB_CONFIG_DIR": str(tmp / "wandb_config")})  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert list((tmp / "results").rglob("run.json")) and list((tmp / "results").rglob("*.wandb"))
    assert list((tmp / "results").rglob(".hydra/config.yaml")) and list((tmp / "results").rglob("train.log"))
    return tmp / "results", done.stdout + done.stderr


def test_no_environment_secret_reaches_records_dumped_configs_logs_or_output(planted_run: tuple[Path, str]) -> None:
    results, printed = planted_run
    secrets = (FAKE_ENV_KEY, FAKE_HF_TOKEN)
    assert not [secret for secret in secrets if secret in printed]
    assert not _files_with(results, secrets)


def test_a_token_in_a_config_override_never_reaches_the_run_record(planted_run: tuple[Path, str]) -> None:
    results, _ = planted_run
    (record,) = results.rglob("run.json")
    assert FAKE_CONFIG_TOKEN not in record.read_text() and "<redacted>" in record.read_text()


@pytest.mark.xfail(strict=True, reason="the override reaches Hydra's .hydra/config.yaml and hydra.yaml (dumped "
                   "before sl-train runs) unredacted (see the issue 7 note)")
def test_a_token_in_a_config_override_reaches_no_file_and_no_output(planted_run: tuple[Path, str]) -> None:
    results, printed = planted_run
    assert FAKE_CONFIG_TOKEN not in printed
    assert not _files_with(results, (FAKE_CONFIG_TOKEN,))


def test_run_id_or_sweep_with_path_separators_is_refused_by_the_store(tmp_path: Path, records: ModuleType) -> None:
    for field, value in (("run_id", "../../outside"), ("run_id", "a/b"), ("sweep", ".."), ("sweep", "/etc"),
                         ("run_id", "a\\b"), ("sweep", "")):  # fmt: skip
        with pytest.raises(TableError, match=f"field {field}="):
            write_record(RunRecord(**records.record_fields(**{field: value})), tmp_path / "results")
    assert list(tmp_path.rglob("*")) == []


def test_a_sweep_name_escaping_the_results_root_writes_nothing_outside_it(tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    (case / "text.txt").write_text(TEXT["text.txt"])
    args = [arg.replace("{tmp}", str(case)) for arg in TINY_TRAIN]
    done = run_cli("train", *args, "sweep=../../evil", cwd=case)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "sweep" in done.stderr
    outside = [p for p in tmp_path.rglob("*") if not p.is_relative_to(case)]
    assert not outside, outside
