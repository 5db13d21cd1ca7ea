"""Every bad data config ends with its own one-line error naming the field; every shipped config loads."""

from __future__ import annotations

import pathlib

import pytest
from omegaconf import OmegaConf

from scaling_lab.data import DataConfig, data_config_from_dict, prepare_data
from scaling_lab.data.config import token_dtype_for
from scaling_lab.errors import ConfigError, DataError

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[2] / "configs" / "data"


def config(**changes):
    base = {
        "name": "t",
        "sources": [{"name": "a", "kind": "embedded", "domain": "prose"}],
        "sequence_length": 32,
        "eval_bytes": 256,
    }
    return data_config_from_dict({**base, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sources": [{"name": "a", "kind": "ftp"}]}, r"data.sources\[a\].kind='ftp' is unknown"),
        ({"sources": [{"name": "a", "kind": "embedded", "domain": "poetry"}]}, r"domain='poetry' is unknown"),
        ({"sources": [{"name": "a", "kind": "embedded", "domain": "prose", "weight": 0}]}, r"weight=0 must be > 0"),
        ({"sources": [{"name": "a", "kind": "embedded", "domain": "code", "weight": -1}]}, r"weight=-1 must be > 0"),
        ({"sources": [{"name": "a", "kind": "files"}]}, r"data.sources\[a\].paths is empty"),
        ({"sources": [{"name": "a", "kind": "hub"}]}, r"data.sources\[a\].dataset is required"),
        ({"sources": [{"name": "a", "kind": "hub", "dataset": "x", "streaming": True}]}, r"max_documents is required"),
        (
            {"sources": [{"name": "a", "kind": "files", "paths": ["x"], "colour": 1}]},
            r"data.sources\[0\].colour is not a setting",
        ),
        ({"sources": []}, r"data.sources is empty"),
        (
            {"sources": [{"name": "a", "kind": "embedded", "domain": "prose"}] * 2},
            r"names \['a'\] repeat",
        ),
        ({"tokenizer": {"kind": "sentencepiece"}}, r"data.tokenizer.kind='sentencepiece' is unknown"),
        ({"tokenizer": {"kind": "bpe"}}, r"data.tokenizer.vocab_size is required"),
        ({"tokenizer": {"kind": "bpe", "vocab_size": 100}}, r"vocab_size=100 is below the 257"),
        ({"tokenizer": {"kind": "bpe", "vocab_size": 10**9}}, r"vocab_size=1000000000 is above the 1048576"),
        ({"tokenizer": {"kind": "bpe", "vocab_size": 4096, "dtype": "uint8"}}, r"does not fit data.tokenizer.dtype"),
        ({"tokenizer": {"kind": "byte", "vocab_size": 512}}, r"does not apply to kind=byte"),
        ({"tokenizer": {"kind": "hf"}}, r"data.tokenizer.name is required"),
        ({"tokenizer": {"kind": "byte", "dtype": "int4"}}, r"data.tokenizer.dtype='int4' is unknown"),
        ({"sequence_length": 0}, r"data.sequence_length=0 must be a positive integer"),
        ({"eval_bytes": -5}, r"data.eval_bytes=-5 must be a positive integer"),
        ({"seed": -1}, r"data.seed=-1"),
        ({"seed": 2**63}, r"data.seed=9223372036854775808 does not fit a 64-bit integer"),
        (
            {"sources": [{"name": "a", "kind": "embedded", "domain": "prose", "weight": float("nan")}]},
            r"data.sources\[0\].weight=nan is not a finite number",
        ),
        ({"name": "???"}, r"data.name is required"),
    ],
)
def test_bad_config_names_the_field(changes, message):
    with pytest.raises(ConfigError, match=message) as caught:
        config(**changes)
    assert "\n" not in str(caught.value)


def test_dtype_is_the_smallest_that_holds_the_vocabulary():
    assert [token_dtype_for(v) for v in (256, 257, 65536, 65537)] == ["uint8", "uint16", "uint16", "uint32"]
    with pytest.raises(ConfigError, match="holds 256 ids but the vocabulary has 300"):
        token_dtype_for(300, "uint8")


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_load_as_typed_configs(path):
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    typed = data_config_from_dict(raw)
    assert typed.name and typed.sources and abs(sum(typed.weights) - 1) < 1e-12
    structured = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(DataConfig), OmegaConf.load(path)))
    assert structured == typed  # Hydra structured-config route gives the same object


def test_planned_vocab_size_needs_no_tokenizing():
    from scaling_lab.data import planned_vocab_size
    from scaling_lab.data.config import TokenizerConfig

    assert planned_vocab_size(TokenizerConfig()) == 256
    assert planned_vocab_size(TokenizerConfig(kind="bpe", vocab_size=4096)) == 4096
    assert planned_vocab_size(TokenizerConfig(kind="hf", name="gpt2")) is None


def test_default_config_names_offline_sources():
    typed = data_config_from_dict(OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "embedded.yaml")))
    assert {source.kind for source in typed.sources} == {"embedded"}
    assert typed.tokenizer.kind == "byte"


def test_missing_and_empty_files_are_data_errors(tmp_path):
    missing = config(sources=[{"name": "a", "kind": "files", "paths": [str(tmp_path / "nowhere" / "*.txt")]}])
    with pytest.raises(DataError, match=r"data.sources\[a\].paths: .*matches no file"):
        prepare_data(missing, tmp_path / "cache")
    (tmp_path / "empty.txt").write_text("")
    empty = config(sources=[{"name": "a", "kind": "files", "paths": [str(tmp_path / "empty.txt")]}])
    with pytest.raises(DataError, match=r"empty.txt is empty"):
        prepare_data(empty, tmp_path / "cache")


def test_too_small_source_for_the_eval_set(text_dir, tmp_path):
    source = {"name": "a", "kind": "files", "paths": [str(text_dir)]}
    small = config(sources=[source], eval_sets=[source], eval_bytes=10**6)
    with pytest.raises(DataError, match=r"data.eval_sets\[a\] has \d+ tokens, too few .* lower data.eval_bytes"):
        prepare_data(small, tmp_path / "cache")


def test_unreachable_hub_fails_fast_with_one_line(tmp_path, monkeypatch):
    import datasets
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: connection refused
    hub = config(sources=[{"name": "h", "kind": "hub", "dataset": "someone/some-dataset"}])
    loads = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: loads.append(args))
    with pytest.raises(DataError, match=r"data.sources\[h\]: hub dataset 'someone/some-dataset' needs 127.0.0.1:9"):
        prepare_data(hub, tmp_path / "cache")
    # fast without a clock: the one-connection probe failed, and `datasets` (whose hub client retries for ~30 s)
    # was never asked
    assert loads == []
