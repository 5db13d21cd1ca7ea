"""The tracker with real wandb in offline mode: what lands in the run directory, secrets, fallbacks."""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from scaling_lab.errors import ConfigError
from scaling_lab.redact import looks_secret, scrub_argv
from scaling_lab.results import RunRecord, write_record
from scaling_lab.tracking import LoggerConfig, Tracker, WandbTracker, open_tracker, quantity_tags, resolve_mode

matplotlib.use("Agg")

PLANTED_KEY = "0123456789abcdef0123456789abcdefc0ffee42"  # shaped like a wandb API key (40 hex)
PLANTED_TOKEN = "hf_PLANTEDsecretVALUEforTHEtest123"


@pytest.fixture(autouse=True)
def offline_wandb(tmp_path, monkeypatch):
    """Real wandb, offline, writing only under tmp_path."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb_cache"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


# ---- reading wandb's offline transaction log (run-<id>.wandb) -------------------------------------------
# wandb ≥ 0.2x no longer ships a Python reader (wandb.sdk.internal.datastore is gone), so we read the
# documented LevelDB log framing ourselves and decode each record with wandb's own protobuf, Record.
# Layout (wandb/sdk/internal/datastore.py in earlier releases): a 7-byte header ":W&B", magic 0xBEE1, version 1;
# then 32 KiB blocks of chunks, each chunk = crc32c (4 bytes), length (2, little-endian), type (1:
# full, 2: first, 3: middle, 4: last), payload; a block tail shorter than a chunk header is zero padding.
_BLOCK, _CHUNK_HEADER, _FILE_HEADER = 32 * 1024, 7, 7


def read_wandb_log(path: Path) -> list:
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a wandb transaction log"
    records, pending, offset = [], b"", _FILE_HEADER
    while offset + _CHUNK_HEADER <= len(data):
        room = _BLOCK - offset % _BLOCK
        if room < _CHUNK_HEADER:
            offset += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[offset : offset + _CHUNK_HEADER])
        payload = data[offset + _CHUNK_HEADER : offset + _CHUNK_HEADER + length]
        offset += _CHUNK_HEADER + length
        if kind == 0 and length == 0:  # padding at the end of the file
            break
        pending = payload if kind in (1, 2) else pending + payload
        if kind in (1, 4):
            record = Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def records_of(run_dir: Path, kind: str, timeout_s: float = 300.0) -> list:
    """Records of one kind from a finished run's log. wandb's service writes the log asynchronously: finish()
    can return before it is flushed (seen with wandb 0.31 offline), so wait until the exit record is there."""
    (log,) = run_dir.glob("run-*.wandb")
    deadline = time.monotonic() + timeout_s
    while True:
        records = read_wandb_log(log)
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return [getattr(r, kind) for r in records if r.WhichOneof("record_type") == kind]
        time.sleep(0.1)


def items(proto_items) -> dict:
    """A wandb summary/history/config item list as {key: decoded JSON value} (nested keys joined by '/')."""
    return {"/".join(item.nested_key) or item.key: json.loads(item.value_json) for item in proto_items}


def all_bytes(directory: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file())


# ---- tests ------------------------------------------------------------------------------------------------


def test_offline_run_holds_config_metrics_and_summary(tmp_path, capsys):
    config = LoggerConfig(backend="wandb", project="scaling-lab-tests", dir=str(tmp_path / "out"), tags=["cpu"])
    run_config = {"model": {"width": 64}, "budget": {"n_tokens": 10_000}}
    with open_tracker(
        config, name="w64_d1e4", group="tiny_sweep", job_type="train", run_config=run_config, tags=["tiny"]
    ) as tracker:
        assert isinstance(tracker, WandbTracker)
        for step in range(5):
            tracker.log({"train/loss": 5.0 - step, "lr": 1e-3}, step=step)
        tracker.summary({"final_loss": 3.25, "n_params_total": 120_000, "n_tokens": 10_240, "flops_6nd": 7.4e9})
    run_dir = tracker.run_dir
    assert run_dir is not None and run_dir.parent == tmp_path / "out" / "wandb"
    assert f"wandb sync {run_dir}" in capsys.readouterr().out

    (run,) = records_of(run_dir, "run")
    assert (run.display_name, run.run_group, run.job_type, run.project) == (
        "w64_d1e4",
        "tiny_sweep",
        "train",
        "scaling-lab-tests",
    )
    assert sorted(run.tags) == ["cpu", "tiny"]
    assert {"model", "budget"} <= set(items(run.config.update))
    assert items(run.config.update)["model"] == {"width": 64}

    history = [items(h.item) for h in records_of(run_dir, "history")]
    assert [h["train/loss"] for h in history] == [5.0, 4.0, 3.0, 2.0, 1.0]
    assert [h["_step"] for h in history] == [0, 1, 2, 3, 4]

    summary: dict = {}
    for record in records_of(run_dir, "summary"):
        summary.update(items(record.update))
    assert summary["final_loss"] == 3.25 and summary["n_params_total"] == 120_000 and summary["flops_6nd"] == 7.4e9
    (exit_record,) = records_of(run_dir, "exit")
    assert exit_record.exit_code == 0


def test_no_secret_reaches_the_wandb_run_or_the_record(tmp_path, monkeypatch, make_record_for_tracking):
    monkeypatch.setenv("WANDB_API_KEY", PLANTED_KEY)  # offline mode still: WANDB_MODE wins over credentials
    monkeypatch.setenv("HF_TOKEN", PLANTED_TOKEN)
    # wandb records the command line in the run: plant secrets there too (Hydra override and flag forms)
    argv = ["sl-train", f"+data.hub_token={PLANTED_TOKEN}", "--api-key", PLANTED_KEY, "model=tiny_seen"]
    monkeypatch.setattr(sys, "argv", argv)
    run_config = {
        "logger": {"api_key": PLANTED_KEY, "project": "p"},
        "data": {"hub_token": PLANTED_TOKEN, "note": f"uses {PLANTED_TOKEN}", "mirror": PLANTED_KEY},
        "model": {"width": 64},
    }
    config = LoggerConfig(backend="wandb", project="p", dir=str(tmp_path / "out"))
    with open_tracker(config, name="r", group="g", job_type="train", run_config=run_config) as tracker:
        tracker.log({"loss": 3.0, "auth_token": PLANTED_TOKEN}, step=0)
        tracker.summary({"final_loss": 3.0, "secret": PLANTED_KEY})
    path = write_record(make_record_for_tracking(config=run_config), tmp_path / "results")

    assert records_of(tracker.run_dir, "exit")  # the log is flushed before its bytes are searched
    wandb_files = all_bytes(tmp_path / "out")
    assert b'"width"' in wandb_files and b"model=tiny_seen" in wandb_files  # config and argv reached wandb
    assert sys.argv == argv  # restored after wandb.init
    for secret in (PLANTED_KEY, PLANTED_TOKEN):
        assert secret.encode() not in wandb_files
        assert secret not in path.read_text()
    assert json.loads(path.read_text())["config"]["model"] == {"width": 64}


def test_scrub_argv_redacts_overrides_flags_and_known_values():
    argv = ["+logger.api_key=abc", "--password", "pw123456", "--token=t", "lr=3e-3", "seed=1", "x=" + PLANTED_KEY]
    assert scrub_argv(argv, frozenset({PLANTED_KEY})) == [
        "+logger.api_key=<redacted>",
        "--password",
        "<redacted>",
        "--token=<redacted>",
        "lr=3e-3",
        "seed=1",
        "x=<redacted>",
    ]


def test_an_exception_inside_the_block_closes_the_run_as_failed(tmp_path):
    config = LoggerConfig(backend="wandb", project="p", dir=str(tmp_path))
    with (
        pytest.raises(RuntimeError, match="boom"),
        open_tracker(config, name="r", group="g", job_type="train", run_config={}) as tracker,
    ):
        tracker.log({"loss": 1.0}, step=0)
        raise RuntimeError("boom")
    (exit_record,) = records_of(tracker.run_dir, "exit")
    assert exit_record.exit_code == 1
    tracker.close()  # closing twice is harmless


def test_fit_run_logs_a_figure_and_a_table(tmp_path):
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([1, 2, 3], [3.0, 2.5, 2.2])
    config = LoggerConfig(backend="wandb", project="p", dir=str(tmp_path))
    with open_tracker(config, name="fit", group="g", job_type="fit", run_config={"approach": 3}) as tracker:
        tracker.log_figure("frontier", figure)
        tracker.log_table("points", pd.DataFrame({"n_params": [1e5, 2e5], "loss": [3.1, 2.9]}))
    plt.close(figure)
    media = tracker.run_dir / "files" / "media"
    assert list((media / "images").glob("frontier_*.png"))
    (table_file,) = (media / "table").glob("points_*.table.json")
    assert json.loads(table_file.read_text())["data"] == [[1e5, 3.1], [2e5, 2.9]]


def test_null_tracker_writes_nothing(tmp_path):
    for config in (
        LoggerConfig(backend="none", project="p", dir=str(tmp_path / "a")),
        LoggerConfig(backend="wandb", project="p", mode="disabled", dir=str(tmp_path / "b")),
    ):
        with open_tracker(config, name="r", group="g", job_type="train", run_config={"x": 1}) as tracker:
            tracker.log({"loss": 1.0}, step=0)
            tracker.summary({"final_loss": 1.0})
        assert type(tracker) is Tracker and tracker.run_dir is None
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_wandb_failure_at_init_falls_back_to_the_null_tracker(tmp_path, capsys):
    # "a/b" is a project name wandb itself refuses (no "/" allowed): wandb.init raises, the run goes on.
    config = LoggerConfig(backend="wandb", project="a/b", dir=str(tmp_path))
    with open_tracker(config, name="r", group="g", job_type="train", run_config={}) as tracker:
        tracker.log({"loss": 1.0}, step=0)
    assert type(tracker) is Tracker
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("warning: wandb did not start (")


def test_mode_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE")
    empty_netrc = tmp_path / "netrc_empty"
    empty_netrc.write_text("")
    with_entry = tmp_path / "netrc"
    with_entry.write_text("machine api.wandb.ai\n  login user\n  password 0000000000000000000000000000000000000000\n")
    config = LoggerConfig(backend="wandb", project="p")
    assert resolve_mode(config, {"NETRC": str(empty_netrc)}) == "offline"
    assert resolve_mode(config, {"NETRC": str(with_entry)}) == "online"
    assert resolve_mode(config, {"NETRC": str(empty_netrc), "WANDB_API_KEY": PLANTED_KEY}) == "online"
    assert resolve_mode(config, {"NETRC": str(with_entry), "WANDB_MODE": "offline"}) == "offline"
    assert resolve_mode(LoggerConfig(backend="wandb", project="p", mode="disabled"), {"WANDB_MODE": "online"}) == (
        "disabled"
    )
    with pytest.raises(ConfigError, match="WANDB_MODE='sometimes' is unknown"):
        resolve_mode(config, {"WANDB_MODE": "sometimes"})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"backend": "tensorboard"}, "logger.backend='tensorboard' is unknown"),
        ({"mode": "loud"}, "logger.mode='loud' is unknown"),
        ({"backend": "wandb", "project": ""}, "logger.project is empty"),
    ],
)
def test_logger_config_errors_name_the_field(fields, message):
    with pytest.raises(ConfigError, match=message):
        LoggerConfig(**fields)


def test_job_type_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="job_type='eval' is unknown"):
        open_tracker(LoggerConfig(), name="r", group="g", job_type="eval", run_config={})


@pytest.fixture
def make_record_for_tracking():
    """A real finished RunRecord with a given config (the results tests' factory lives in tests/results/)."""
    from scaling_lab.results import RunPoint, library_versions, utc_now

    def make(config: dict) -> RunRecord:
        return RunRecord(
            run_id="r", sweep="g", status="finished", config=config, config_hash="0" * 16, seed=0,
            data_mix="bytes", data_mix_hash="h", n_params_total=1000, n_params_nonembed=800,
            tied_embeddings=True, n_tokens_planned=100, n_tokens=128,
            points=[RunPoint(n_tokens=128, loss=3.0, flops_6nd=6.0 * 1000 * 128, flops_exact=9.0e5)],
            curve=[], tokens_per_second=1.0, flops_per_second=1.0, wall_time_s=1.0, device="cpu",
            versions=library_versions(), created_at=utc_now(), finished_at=utc_now(),
        )  # fmt: skip

    return make


# ---- one group per sweep, tags with N, D and C, the fit run in the same group -----------------


def test_quantity_tags_have_three_significant_figures_and_survive_the_secret_filter(tmp_path):
    tags = quantity_tags(N=14_912, D=2_134_567, C=1e11, small=0.5)
    assert tags == ["N=1.49e4", "D=2.13e6", "C=1.00e11", "small=5.00e-1"]
    assert not [tag for tag in tags if looks_secret(tag)]


def _tiny_train_config(tmp_path, sweep):
    """A real tiny sl-train config (1k-parameter model, a local text file) logging to offline wandb."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from scaling_lab.cli import CONFIGS_DIR
    from scaling_lab.cli.compose import register_configs
    from scaling_lab.config.schema import run_config_from_dict

    (tmp_path / "text.txt").write_text("A small text to train on. " * 400)
    overrides = ["model=n1k", "budget.value=2048", "data=local_files", f"data.sources.0.paths=[{tmp_path}/text.txt]",
                 "data.sequence_length=16", "data.eval_bytes=256", "optim.batch_tokens=128", "logger=wandb",
                 "threads=1", "device=cpu", "debug.progress=false", f"sweep={sweep}",
                 f"paths.results_dir={tmp_path}/results", f"paths.cache_dir={tmp_path}/cache"]  # fmt: skip
    register_configs()
    with initialize_config_dir(config_dir=CONFIGS_DIR, version_base="1.3"):
        cfg = compose("sl_train", overrides=overrides)
    return run_config_from_dict(OmegaConf.to_container(cfg, resolve=True))


def test_a_training_run_is_tagged_with_n_d_c_in_its_sweep_group(tmp_path):
    from scaling_lab.sweep.sweep import run_point
    from scaling_lab.train.plan import make_plan

    config = _tiny_train_config(tmp_path, sweep="tagged")
    outcome = run_point(config)
    assert outcome.record is not None and outcome.record.status == "finished"
    (run_dir,) = (tmp_path / "results" / "tagged" / config.run_id() / "wandb").glob("offline-run-*")
    (run,) = records_of(run_dir, "run")
    assert (run.run_group, run.job_type, run.display_name) == ("tagged", "train", config.run_id())
    plan = make_plan(config, vocab_size=256)  # byte-level tokenizer of data=local_files
    n, d = outcome.record.n_params_total, outcome.record.n_tokens_planned
    assert n == plan.n_params_total and d == 2048
    expected = quantity_tags(N=n, D=d, C=plan.flops_per_token_exact * d)
    assert expected[0] == f"N={n / 1e3:.2f}e3" and expected[1] == "D=2.05e3"  # by hand: 3 significant figures
    assert sorted(run.tags) == sorted([outcome.record.data_mix, *expected])


def test_the_fit_run_of_a_sweep_joins_the_sweep_group(tmp_path):
    import importlib.util

    from hydra import compose, initialize_config_dir

    from scaling_lab.cli.fit import CONFIGS_DIR, run
    from scaling_lab.fitting.laws import CHINCHILLA_APPROACH3
    from scaling_lab.fitting.synthetic import isoflop_table

    # tests/fitting/conftest.py's real-store writer, loaded by path rather than copied
    spec = importlib.util.spec_from_file_location("fitting_conftest", Path(__file__).parent / "fitting" / "conftest.py")
    fitting = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fitting)
    table = isoflop_table(CHINCHILLA_APPROACH3, budgets=fitting.BUDGETS[:4], noise=0.0, seed=0)
    root = fitting.write_store(tmp_path / "results", table, sweep="isoflop_a")
    overrides = [f"input={root / 'isoflop_a'}", f"out={tmp_path / 'fit'}", "logger=wandb", "approaches=[approach3]",
                 "figures=false", "fit.extrapolation.holdout_budgets=0"]  # fmt: skip
    with initialize_config_dir(version_base="1.3", config_dir=CONFIGS_DIR):
        run(compose(config_name="sl_fit", overrides=overrides))
    (run_dir,) = (tmp_path / "fit" / "wandb").glob("offline-run-*")
    (fit_run,) = records_of(run_dir, "run")
    assert (fit_run.run_group, fit_run.job_type, fit_run.display_name) == ("isoflop_a", "fit", "fit-isoflop_a")
