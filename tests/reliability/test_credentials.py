"""Credentials reach no file, no printed line and no wandb run: real sl-train and sl-fit runs (offline wandb) with
secrets planted in the environment (WANDB_API_KEY, HF_TOKEN) and passed again as values (tags, a config key, a data
path), then every file the run wrote searched byte by byte, wandb's binary run log included."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from scaling_lab.redact import is_secret_name, scrub_secrets, scrub_text
from scaling_lab.results import RunRecord
from scaling_lab.tracking import LoggerConfig, open_tracker

from .conftest import TESTS, run_cli
from .test_bad_inputs import TEXT, TINY_TRAIN

ENV_KEY = "sk-test-0123456789abcdef"  # WANDB_API_KEY, shaped like an OpenAI key
ENV_TOKEN = "plainDrillValue0123456789"  # HF_TOKEN, no known shape: only the environment says it is a secret
CONFIG_SECRET = "configDrillValue9876543210"  # known only as the value of a credential-named config key
SECRETS = (ENV_KEY, ENV_TOKEN, CONFIG_SECRET)
ENV = {"WANDB_API_KEY": ENV_KEY, "HF_TOKEN": ENV_TOKEN}
# every secret again as a tag, beside one that must survive
TAGS = f"logger.tags=[{ENV_KEY},{ENV_TOKEN},{CONFIG_SECRET},visible-tag]"


def _env(tmp: Path) -> dict[str, str]:
    return {**ENV, "HOME": str(tmp), "WANDB_CONFIG_DIR": str(tmp / "wandb_config")}


def _train_args(tmp: Path) -> list[str]:
    (tmp / "text.txt").write_text(TEXT["text.txt"])
    args = [arg.replace("{tmp}", str(tmp)) for arg in TINY_TRAIN if arg != "logger=none"]
    return [*args, "logger=wandb", "logger.mode=offline"]


def _files_holding_a_secret(root: Path) -> list[str]:
    """Every file under root (results, Hydra's folders, wandb's run folder and its binary log) holding a secret."""
    files = [path for path in sorted(root.rglob("*")) if path.is_file()]
    assert files
    return [f"{path.relative_to(root)}: {secret}" for path in files for secret in SECRETS
            if secret.encode() in path.read_bytes()]  # fmt: skip


def _wandb_log(root: Path) -> bytes:
    (log,) = root.rglob("offline-run-*/run-*.wandb")
    return log.read_bytes()


@pytest.mark.parametrize(
    ("name", "credential"),
    [(name, True) for name in ("api_key", "WANDB_API_KEY", "wandbApiKey", "APIKey", "hf_token", "HF_TOKEN", "HFToken",
                               "access_token", "auth_token", "use_auth_token", "AWS_SESSION_TOKEN", "token", "key",
                               "password", "db-password", "PGPASSWORD", "DB_PWD", "secret", "client_secret",
                               "AWS_SECRET_ACCESS_KEY", "private_key", "credentials", "auth", "Authorization")]
    + [(name, False) for name in ("experts_per_token", "moe.experts_per_token", "flops_per_token", "tokens", "n_tokens",
                                  "batch_tokens", "eval_bytes", "warmup_tokens", "tokenizer", "bos_token",
                                  "pad_token", "sort_keys", "cache_key", "key_dim", "num_key_value_heads",
                                  "token_budget", "hf_token_path", "secret_name", "AWS_ACCESS_KEY_ID", "monkey",
                                  "author", "keyboard", "PWD_HINT", "")],
)  # fmt: skip
def test_credential_names(name: str, credential: bool) -> None:
    assert is_secret_name(name) is credential


def test_an_override_of_a_rate_named_like_a_token_is_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["sl-plan"])
    assert scrub_text("moe.experts_per_token=2 hf_token=abcdefgh12") == "moe.experts_per_token=2 hf_token=<redacted>"


def test_a_value_under_a_credential_key_is_redacted_wherever_it_reappears(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["sl-train"])
    config = {"grid": {"api_key": CONFIG_SECRET}, "logger": {"tags": [CONFIG_SECRET, "kept"]}, "note": "short"}
    assert scrub_secrets(config, frozenset()) == {
        "grid": {"api_key": "<redacted>"}, "logger": {"tags": ["<redacted>", "kept"]}, "note": "short"}  # fmt: skip
    # a credential-named argument makes its value known to every later redaction of the process (log lines)
    monkeypatch.setattr("sys.argv", ["sl-train", f"+grid.api_key={CONFIG_SECRET}"])
    assert scrub_text(f"'{CONFIG_SECRET}' matches no file") == "<redacted> matches no file"


def test_hydra_dumps_redact_a_config_secret_where_an_override_repeats_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from scaling_lab.cli.redacted_hydra import redacted_config

    monkeypatch.setattr("sys.argv", ["sl-train"])  # known from the config alone (e.g. set by a sweep file)
    config = {"grid": {"api_key": CONFIG_SECRET}, "hydra": {"overrides": {"task": [f"logger.tags=[{CONFIG_SECRET}]",
                                                                                   "seed=1"]}}}  # fmt: skip
    assert redacted_config(config)["hydra"]["overrides"]["task"] == ["logger.tags=<redacted>", "seed=1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A real tiny sl-train run: the secrets in its environment, as tags, and one under a credential-named key."""
    tmp = tmp_path_factory.mktemp("trained")
    done = run_cli("train", *_train_args(tmp), TAGS, f"+grid.api_key={CONFIG_SECRET}", cwd=tmp, env=_env(tmp))
    assert done.returncode == 0, done.stderr[-2000:]
    return tmp, done.stdout + done.stderr


def test_a_training_run_writes_no_secret_in_any_file_wandb_log_included(trained: tuple[Path, str]) -> None:
    tmp, printed = trained
    assert list(tmp.rglob("run.json")) and list(tmp.rglob(".hydra/config.yaml"))
    wandb_log = _wandb_log(tmp)
    assert b"visible-tag" in wandb_log and b'"preset":"n1k"' in wandb_log  # tags, config
    assert not list(tmp.rglob("output.log"))  # no console capture: wandb gets only what the tracker hands it
    assert not _files_holding_a_secret(tmp)
    assert not [secret for secret in SECRETS if secret in printed]


def test_the_record_keeps_the_config_but_the_credentials(trained: tuple[Path, str]) -> None:
    tmp, _ = trained
    (path,) = tmp.rglob("run.json")
    config = json.loads(path.read_text())["config"]
    assert config["grid"] == {"api_key": "<redacted>"}
    assert config["logger"]["tags"] == ["<redacted>", "<redacted>", "<redacted>", "visible-tag"]
    assert config["model"]["preset"] == "n1k"


def test_a_failed_run_records_its_reason_redacted(records, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", ENV_TOKEN)
    record = RunRecord(**records.record_fields(status="failed", reason=f"OSError: cannot open /data/{ENV_TOKEN}.txt",
                                               data_mix=f"mix-{CONFIG_SECRET}",
                                               config={"grid": {"hf_token": CONFIG_SECRET}}))  # fmt: skip
    assert record.reason == "OSError: cannot open <redacted>" and record.data_mix == "<redacted>"
    assert not [secret for secret in SECRETS if secret in json.dumps(record.to_dict())]


@pytest.mark.parametrize("launcher", ["sequential", pytest.param("local", marks=pytest.mark.slow)])  # joblib: ~60 s
def test_in_a_multirun_each_failing_points_error_line_is_redacted(tmp_path: Path, launcher: str) -> None:
    # every point fails when it loads its data (the path names a folder that does not exist), in the job itself
    args = [arg for arg in _train_args(tmp_path) if not arg.startswith(("budget.value=", "data.sources.0.paths="))]
    done = run_cli("train", "-m", *args, f"data.sources.0.paths=[{tmp_path}/{ENV_TOKEN}/text.txt]",
                   f"logger.tags=[{ENV_KEY}]", "budget.value=2048,3072", f"launcher={launcher}", cwd=tmp_path,
                   env=_env(tmp_path))  # fmt: skip
    printed = done.stdout + done.stderr
    failed = [line for line in done.stderr.splitlines() if line.startswith("failed: grid point #")]
    assert len(failed) == 2, printed[-3000:]
    assert all("data.sources" in line and "<redacted>" in line for line in failed), failed
    # the sweep's one summary line (every point failed: exit 1)
    assert done.returncode == 1 and done.stderr.count("error: 2 of 2 grid points failed") == 1, printed[-3000:]
    assert "logger.tags=<redacted>" in printed  # the launcher's job lines
    assert not [secret for secret in SECRETS if secret in printed]
    assert not (tmp_path / "results").exists()  # every start was refused: nothing left behind to hold a secret


def test_a_sweep_named_by_a_secret_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    done = run_cli("train", *_train_args(tmp_path), f"sweep={ENV_TOKEN}", cwd=tmp_path, env=_env(tmp_path))
    assert done.returncode == 2 and done.stderr.startswith("error: sweep=<redacted> holds a credential")
    assert len(done.stderr.splitlines()) == 1 and ENV_TOKEN not in done.stdout + done.stderr
    assert not (tmp_path / "results").exists()


def _test_module(relative: str) -> ModuleType:
    """Another test folder's helpers, loaded by path rather than copied."""
    spec = importlib.util.spec_from_file_location(Path(relative).stem + "_helpers", TESTS / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_store(root: Path) -> Path:
    """A real results store of one isoFLOP sweep (tests/fitting/conftest.py's writer)."""
    fitting = _test_module("fitting/conftest.py")
    from scaling_lab.fitting.laws import CHINCHILLA_APPROACH3
    from scaling_lab.fitting.synthetic import isoflop_table

    table = isoflop_table(CHINCHILLA_APPROACH3, budgets=fitting.BUDGETS[:4], noise=0.0, seed=0)
    return fitting.write_store(root, table, sweep="isoflop") / "isoflop"


def test_the_fit_run_writes_no_secret_in_any_file_wandb_log_included(tmp_path: Path) -> None:
    store = _write_store(tmp_path / "results")
    done = run_cli("fit", f"input={store}", f"out={tmp_path / 'fit'}", "approaches=[approach3]", "figures=false",
                   "fit.extrapolation.holdout_budgets=0", "logger=wandb", "logger.mode=offline", TAGS,
                   f"+extra.hf_token={CONFIG_SECRET}", cwd=tmp_path, env=_env(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    wandb_log = _wandb_log(tmp_path / "fit")
    assert b"visible-tag" in wandb_log and b"fit-isoflop" in wandb_log
    assert list((tmp_path / "fit").rglob("media/table/points_*.table.json"))  # the tables reached wandb
    assert not _files_holding_a_secret(tmp_path)
    assert not [secret for secret in SECRETS if secret in done.stdout + done.stderr]


def test_tables_metrics_and_names_handed_to_wandb_are_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_CONFIG_DIR": str(tmp_path / "config"),
                        "WANDB_CACHE_DIR": str(tmp_path / "cache"), "WANDB_API_KEY": ENV_KEY}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    config = LoggerConfig(backend="wandb", project="p", dir=str(tmp_path / "out"))
    table = pd.DataFrame({"run": ["a", f"b-{ENV_KEY}"], "hf_token": [CONFIG_SECRET, "abc"], "loss": [3.0, 2.5]})
    with open_tracker(config, name=f"fit-{ENV_KEY}", group=f"group {CONFIG_SECRET}", job_type="fit",
                      run_config={"grid": {"api_key": CONFIG_SECRET}}) as tracker:  # fmt: skip
        tracker.log({"note": f"uses {CONFIG_SECRET}", "loss": 1.0}, step=0)
        tracker.summary({"reason": f"failed with {ENV_KEY}"})
        tracker.log_table("points", table)
    (run,) = _test_module("test_tracking.py").records_of(tracker.run_dir, "run")  # waits until wandb has flushed
    assert (run.display_name, run.run_group) == ("<redacted>", "group <redacted>")
    (table_file,) = (tracker.run_dir / "files" / "media" / "table").glob("points_*.table.json")
    assert json.loads(table_file.read_text())["data"] == [["a", "<redacted>", 3.0], ["<redacted>", "<redacted>", 2.5]]
    assert not _files_holding_a_secret(tmp_path / "out")
