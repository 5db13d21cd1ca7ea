"""RunRecord: round trip, coercion, and every validation rule naming its field."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from scaling_lab.errors import TableError
from scaling_lab.results import SCHEMA_VERSION, RunPoint, RunRecord, config_hash, scrub_secrets


def test_round_trip_through_json_is_identical(make_record, make_wsd_record):
    for record in (make_record(), make_wsd_record()):
        text = json.dumps(record.to_dict())
        assert RunRecord.from_dict(json.loads(text)) == record
        assert record.to_dict()["schema_version"] == SCHEMA_VERSION


def test_diverged_record_keeps_nan_loss_through_json(make_record):
    record = make_record(
        status="diverged",
        reason="loss is nan at step 7",
        diverged_at_step=7,
        points=[],
        curve=[{"n_tokens": 512, "flops_6nd": 1.0, "flops_exact": 1.0, "loss": float("nan")}],
    )
    back = RunRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert math.isnan(back.curve[0].loss) and back.diverged_at_step == 7 and back.final_loss is None


def test_numpy_scalars_become_plain_python(make_record):
    record = make_record(seed=np.int64(3), wall_time_s=np.float32(1.5), tied_embeddings=np.bool_(False))
    assert type(record.seed) is int and type(record.wall_time_s) is float and record.tied_embeddings is False
    json.dumps(record.to_dict())  # plain JSON, no numpy leaking into the file


def test_points_given_as_dicts_are_built(make_record):
    record = make_record(points=[{"n_tokens": 10_240, "loss": 3, "flops_6nd": 1, "flops_exact": 2}])
    assert record.points[0] == RunPoint(n_tokens=10_240, loss=3.0, flops_6nd=1.0, flops_exact=2.0)
    assert type(record.points[0].loss) is float


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(surprise=1), "unknown field surprise"),
        (lambda d: d.pop("seed"), "missing field seed"),
        (lambda d: d.update(seed="zero"), "field seed='zero' must be int"),
        (lambda d: d.update(seed=True), "field seed=True must be int"),
        (lambda d: d.update(tied_embeddings=1), "field tied_embeddings=1 must be bool"),
        (lambda d: d["points"][0].update(loss="low"), "field points[0].loss='low' must be float"),
        (lambda d: d["points"][0].update(extra=0), "unknown field points[0].extra"),
        (lambda d: d["points"][0].update(loss=float("nan")), "field points[0].loss=nan in a finished record"),
        (lambda d: d["curve"][1].update(loss=float("inf")), "field curve[1].loss=inf in a finished record"),
        (lambda d: d["points"][0].update(n_tokens=-5), "field points[0].n_tokens=-5 must be a non-negative"),
        (lambda d: d.update(n_params_total=-1), "field n_params_total=-1 must be positive"),
        (lambda d: d.update(n_params_nonembed=-1), "field n_params_nonembed=-1 must be a non-negative"),
        (lambda d: d.update(n_tokens_planned=0), "field n_tokens_planned=0 must be positive"),
        (lambda d: d.update(wall_time_s=-2.0), "field wall_time_s=-2.0 must be a non-negative"),
        (lambda d: d.update(schema_version=SCHEMA_VERSION + 1), "newer than this scaling_lab reads"),
        (lambda d: d.update(status="done"), "field status='done' must be one of"),
        (lambda d: d.update(n_tokens=999), "differs from the last point's n_tokens"),
        (lambda d: d.update(points=[]), "field points is empty in a finished record"),
        (lambda d: d.update(finished_at=None), "field finished_at=None with status='finished'"),
        (lambda d: d.update(created_at="yesterday"), "field created_at='yesterday' is not ISO-8601"),
        (lambda d: d.update(created_at="2026-11-22T07:40:00+02:00"), "must be in UTC"),
        (lambda d: d.update(run_id="a/b"), "field run_id='a/b' is not a valid directory name"),
        (lambda d: d.update(status="failed"), "field reason is empty for status='failed'"),
        (lambda d: d.update(status="diverged", reason="nan"), "field diverged_at_step=None with status='diverged'"),
        (lambda d: d.update(config={"when": object()}), "field config.when is a object, not a JSON value"),
    ],
)
def test_from_dict_rejects_bad_records_naming_file_and_field(make_record, mutate, message):
    data = make_record().to_dict()
    mutate(data)
    with pytest.raises(TableError) as caught:
        RunRecord.from_dict(data, source="store/tiny/w64_d1e4/run.json")
    text = str(caught.value)
    assert text.startswith("store/tiny/w64_d1e4/run.json: ") and message in text
    assert "\n" not in text


def test_points_must_increase_in_tokens(make_wsd_record):
    data = make_wsd_record().to_dict()
    data["points"][1], data["points"][2] = data["points"][2], data["points"][1]
    with pytest.raises(TableError, match=r"points\[2\].n_tokens must increase"):
        RunRecord.from_dict(data)


def test_constructor_validates_without_a_file(make_record):
    with pytest.raises(TableError, match="field n_params_total=0 must be positive"):
        make_record(n_params_total=0)


def test_record_config_has_secrets_redacted(make_record, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_PLANTEDplantedPLANTED1234")
    config = {
        "logger": {"api_key": "0123456789abcdef0123456789abcdef01234567", "project": "p"},
        "data": {"url": "https://user:hunter22@example.org/x", "revision": "hf_PLANTEDplantedPLANTED1234"},
        "budget": {"n_tokens": 10_000},
        "tokenizer": "bytes",
    }
    record = make_record(config=config)
    text = json.dumps(record.to_dict())
    for secret in ("0123456789abcdef0123456789abcdef01234567", "hunter22", "hf_PLANTEDplantedPLANTED1234"):
        assert secret not in text
    assert record.config["budget"] == {"n_tokens": 10_000} and record.config["tokenizer"] == "bytes"
    assert record.config["logger"]["project"] == "p"


def test_scrub_keeps_innocent_token_words():
    config = {
        "n_tokens": 5,
        "tokens_per_param": 20,
        "sort_keys": True,
        "tokenizer": {"name": "bytes", "bos_token": "<s>", "pad_token": "<pad>"},
        "auth": True,
    }
    assert scrub_secrets(config, frozenset()) == config
    assert scrub_secrets({"hf_token": "x", "wandbApiKey": "y", "db-password": "z"}, frozenset()) == {
        "hf_token": "<redacted>",
        "wandbApiKey": "<redacted>",
        "db-password": "<redacted>",
    }


def test_config_hash_ignores_key_order_and_named_sections():
    a = {"model": {"width": 64, "depth": 2}, "logger": {"project": "x"}}
    b = {"logger": {"project": "y"}, "model": {"depth": 2, "width": 64}}
    assert config_hash(a, ignore=("logger",)) == config_hash(b, ignore=("logger",))
    assert config_hash(a) != config_hash(b)
    assert config_hash(a) != config_hash({**a, "model": {"width": 65, "depth": 2}})


def test_results_package_does_not_import_torch():
    # The fitter imports the store; it must run where torch is absent (docs/ARCHITECTURE.md).
    import subprocess

    code = "import sys, scaling_lab.results; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
