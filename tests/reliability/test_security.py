"""Security drills: weights-only checkpoints, no pickle/eval on user input, no secret on disk, no path escape."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from types import ModuleType

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import scaling_lab
from scaling_lab.cli import CONFIGS_DIR
from scaling_lab.cli.compose import register_configs
from scaling_lab.errors import CheckpointError, TableError
from scaling_lab.redact import RedactingFilter, scrub_secrets, scrub_text
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
    with pytest.raises(CheckpointError, match=r"is not trusted: it holds objects other than tensors") as error:
        load_checkpoint(path, torch.device("cpu"))
    assert not marker.exists()
    assert "weights_only" not in str(error.value) and error.value.__cause__ is None  # never torch's advice to retry
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


def _planted_args(tmp: Path) -> list[str]:
    (tmp / "text.txt").write_text(TEXT["text.txt"])
    args = [arg.replace("{tmp}", str(tmp)) for arg in TINY_TRAIN if arg != "logger=none"]
    return [*args, "logger=wandb", f"logger.tags=[{FAKE_CONFIG_TOKEN}]"]


PLANTED_ENV = {"WANDB_API_KEY": FAKE_ENV_KEY, "HF_TOKEN": FAKE_HF_TOKEN}


def _env(tmp: Path) -> dict[str, str]:
    return {**PLANTED_ENV, "HOME": str(tmp), "WANDB_CONFIG_DIR": str(tmp / "wandb_config")}


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A real tiny sl-train run (offline wandb) with secrets planted in its environment and in a config override;
    its folder and everything it printed."""
    tmp = tmp_path_factory.mktemp("planted")
    done = run_cli("train", *_planted_args(tmp), cwd=tmp, env=_env(tmp))
    assert done.returncode == 0, done.stderr[-2000:]
    assert list((tmp / "results").rglob("run.json")) and list((tmp / "results").rglob("*.wandb"))
    assert list((tmp / "results").rglob(".hydra/config.yaml")) and list((tmp / "results").rglob("train.log"))
    return tmp / "results", done.stdout + done.stderr


@pytest.fixture(scope="module", params=["sequential", pytest.param("local", marks=pytest.mark.slow)])  # local: ~60 s
def planted_sweep(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The same planted secrets in a two-point sweep (``-m``) through the basic launcher and the joblib one (jobs
    in worker processes, two at once): Hydra also writes the sweep's multirun.yaml and logs each job's overrides."""
    tmp = tmp_path_factory.mktemp(f"sweep_{request.param}")
    args = [arg for arg in _planted_args(tmp) if not arg.startswith("budget.value=")]
    done = run_cli("train", "-m", *args, "budget.value=2048,3072", f"launcher={request.param}", cwd=tmp, env=_env(tmp))
    assert done.returncode == 0, done.stderr[-2000:]
    results = tmp / "results"
    assert len(list(results.rglob("run.json"))) == 2 and len(list(results.rglob(".hydra/config.yaml"))) == 2
    assert list(results.rglob("multirun.yaml")) and len(list(results.rglob("train.log"))) == 2
    assert "#1 : " in done.stdout  # the launcher logged the jobs' overrides (redacted)
    return results, done.stdout + done.stderr


def test_no_environment_secret_reaches_records_dumped_configs_logs_or_output(planted_run: tuple[Path, str]) -> None:
    results, printed = planted_run
    secrets = (FAKE_ENV_KEY, FAKE_HF_TOKEN)
    assert not [secret for secret in secrets if secret in printed]
    assert not _files_with(results, secrets)


def test_a_token_in_a_config_override_never_reaches_the_run_record(planted_run: tuple[Path, str]) -> None:
    results, _ = planted_run
    (record,) = results.rglob("run.json")
    assert FAKE_CONFIG_TOKEN not in record.read_text() and "<redacted>" in record.read_text()


def test_a_token_in_a_config_override_reaches_no_file_and_no_output(planted_run: tuple[Path, str]) -> None:
    results, printed = planted_run
    assert FAKE_CONFIG_TOKEN not in printed
    assert not _files_with(results, (FAKE_CONFIG_TOKEN,))


def test_in_a_sweep_no_planted_secret_reaches_multirun_yaml_job_dumps_logs_or_output(
    planted_sweep: tuple[Path, str],
) -> None:
    results, printed = planted_sweep
    secrets = (FAKE_CONFIG_TOKEN, FAKE_ENV_KEY, FAKE_HF_TOKEN)
    assert not [secret[:12] for secret in secrets if secret in printed]
    assert not _files_with(results, secrets)
    (multirun,) = results.rglob("multirun.yaml")
    overrides = OmegaConf.load(multirun).hydra.overrides.task
    assert "logger.tags=<redacted>" in overrides and "budget.value=2048,3072" in overrides


def test_an_error_quoting_the_overrides_does_not_print_the_credential(tmp_path: Path) -> None:
    done = run_cli("train", *_planted_args(tmp_path), "model=no_such_model", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: ") and "no_such_model" in done.stderr
    assert "logger.tags=<redacted>" in done.stderr and FAKE_CONFIG_TOKEN not in done.stdout + done.stderr


def test_the_redacted_dumps_hold_the_whole_config_but_the_credential(planted_run: tuple[Path, str]) -> None:
    results, _ = planted_run
    (dumps,) = results.rglob(".hydra")
    tmp = results.parent
    register_configs()
    with initialize_config_dir(config_dir=CONFIGS_DIR, version_base="1.3"):
        composed = compose("sl_train", overrides=_planted_args(tmp))
    expected = OmegaConf.to_container(composed, resolve=False, enum_to_str=True)
    expected["logger"]["tags"] = ["<redacted>"]
    assert OmegaConf.to_container(OmegaConf.load(dumps / "config.yaml"), resolve=False) == expected
    overrides = OmegaConf.to_container(OmegaConf.load(dumps / "overrides.yaml"))
    assert overrides == [*_planted_args(tmp)[:-1], "logger.tags=<redacted>"]
    hydra = OmegaConf.load(dumps / "hydra.yaml").hydra
    assert hydra.overrides.task == overrides and hydra.runtime.output_dir == str(dumps.parent)
    assert str(tmp) in (dumps / "config.yaml").read_text()  # paths under the working directory are kept


def test_the_working_directory_is_no_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # POSIX shells set PWD/OLDPWD; "pwd" is a credential word (DB_PWD), but these hold the working directory, and
    # taking them for secrets redacted every path under it (records lost their data paths; hashes moved with cwd)
    monkeypatch.setenv("PWD", str(tmp_path))
    monkeypatch.setenv("OLDPWD", str(tmp_path))
    monkeypatch.setenv("DB_PWD", "hunter2hunter2")
    config = {"data": {"paths": [f"{tmp_path}/text.txt"]}, "note": "hunter2hunter2"}
    assert scrub_secrets(config) == {"data": {"paths": [f"{tmp_path}/text.txt"]}, "note": "<redacted>"}


def test_log_lines_are_redacted_word_by_word() -> None:
    words = f"model=n1k logger.tags=[{FAKE_CONFIG_TOKEN}] --password pw123456  data.api_key=abc seed=1"
    record = logging.LogRecord("hydra", logging.INFO, __file__, 1, "\t#%d : %s", (0, words), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == (
        "\t#0 : model=n1k logger.tags=<redacted> --password <redacted>  data.api_key=<redacted> seed=1"
    )
    assert scrub_text("nothing secret here") == "nothing secret here"


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
