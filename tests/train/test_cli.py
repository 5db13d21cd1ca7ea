"""sl-train through the real Hydra CLI: offline wandb run directory, one-line user errors, config composition."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from scaling_lab.cli import CONFIGS_DIR
from scaling_lab.cli.train import main
from scaling_lab.config.schema import run_config_from_dict
from scaling_lab.model import PRESETS
from scaling_lab.results import load_records

TINY_OVERRIDES = [
    "model=n1k",
    "budget.value=5120",
    "data.sequence_length=32",
    "data.eval_bytes=1024",
    "optim.batch_tokens=256",
    "optim.lr=0.02",
    "threads=1",
    "device=cpu",
    "debug.progress=false",
]


def wandb_reader():
    """The offline-log reader of tests/test_tracking.py (wandb no longer ships one); loaded by path, not copied."""
    spec = importlib.util.spec_from_file_location("tracking_tests", Path(__file__).parents[1] / "test_tracking.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sl_train_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *overrides: str) -> None:
    """Run the real sl-train Hydra app in this process (argv as on a command line; saves a Python start-up)."""
    from scaling_lab.data import default_cache_dir

    paths = [f"paths.results_dir={tmp_path / 'results'}", f"paths.cache_dir={default_cache_dir()}"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["sl-train", *paths, *overrides])
    main()


@pytest.fixture
def no_wandb_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No WANDB_MODE, no API key, no netrc: the tracker must choose offline by itself."""
    from scaling_lab.data import default_cache_dir

    monkeypatch.setenv("SCALING_LAB_CACHE", str(default_cache_dir()))  # keep the shared corpus cache
    for name in [n for n in os.environ if n.startswith("WANDB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_cfg"))


def test_cli_run_without_credentials_logs_to_offline_wandb_in_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_wandb_credentials: None, capsys: pytest.CaptureFixture
) -> None:
    sl_train_in_process(tmp_path, monkeypatch, *TINY_OVERRIDES, "logger=wandb", "sweep=cli_test")
    (record,) = load_records(tmp_path / "results")
    assert record.status == "finished" and record.sweep == "cli_test"
    (run_dir,) = (tmp_path / "results" / "cli_test" / record.run_id / "wandb").glob("offline-run-*")
    assert "wandb sync" in capsys.readouterr().out
    reader = wandb_reader()
    (run,) = reader.records_of(run_dir, "run")
    assert (run.display_name, run.run_group, run.job_type) == (record.run_id, "cli_test", "train")
    assert reader.items(run.config.update)["optim"]["lr"] == 0.02
    summary: dict = {}
    for item in reader.records_of(run_dir, "summary"):
        summary.update(reader.items(item.update))
    assert summary["loss"] == pytest.approx(record.final_loss)
    assert summary["n_params_total"] == record.n_params_total and summary["n_tokens"] == record.n_tokens
    assert summary["flops_6nd"] == pytest.approx(record.points[-1].flops_6nd)
    history = [reader.items(h.item) for h in reader.records_of(run_dir, "history")]
    assert len([h for h in history if "train/loss" in h]) == 20
    assert [h["eval/loss"] for h in history if "eval/loss" in h][-1] == pytest.approx(record.final_loss)
    (exit_record,) = reader.records_of(run_dir, "exit")
    assert exit_record.exit_code == 0


def test_cli_bad_config_is_one_line_and_exit_status_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    bad = ["logger=none", "model=custom", "model.width=64", "model.n_heads=3"]
    with pytest.raises(SystemExit) as exit_info:
        sl_train_in_process(tmp_path, monkeypatch, *TINY_OVERRIDES, *bad)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: model.n_heads=3 does not divide model.width=64")
    assert "choose n_heads among 1, 2, 4, 8" in lines[-1]
    assert not list((tmp_path / "results").rglob("run.json"))


@pytest.mark.slow
def test_console_script_bad_config_exits_2(tmp_path: Path) -> None:
    environ = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "scaling_lab.cli.train", f"paths.results_dir={tmp_path}", "optim.lr=-1"]
    done = subprocess.run(command, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: optim.lr=-1")


@pytest.mark.parametrize("model", sorted(PRESETS))
def test_every_model_config_composes_into_a_valid_run_config(model: str) -> None:
    with initialize_config_dir(config_dir=CONFIGS_DIR, version_base="1.3"):
        cfg = compose(config_name="sl_train", overrides=[f"model={model}"])
    from omegaconf import OmegaConf

    config = run_config_from_dict(OmegaConf.to_container(cfg, resolve=False))
    assert config.model.shape() == PRESETS[model]
    assert config.run_id().startswith(f"{model}-tokens1e+06-")
