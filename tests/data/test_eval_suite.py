"""The eval suite: the same held-out text for every training mix, never trained on, and its bytes for bits per byte."""

from __future__ import annotations

import numpy as np
import pytest

from scaling_lab.data import EvalSet, data_config_from_dict, prepare_data
from scaling_lab.data.corpus import DOMAINS

SEQUENCE_LENGTH = 32
EMBEDDED = {name: {"name": name, "kind": "embedded", "domain": name} for name in DOMAINS}


def mix(weights: dict[str, float], **extra) -> dict:
    sources = [{**EMBEDDED[name], "weight": weight} for name, weight in weights.items()]
    return {"name": "m", "sources": sources, "sequence_length": SEQUENCE_LENGTH, "eval_bytes": 4096, **extra}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    from scaling_lab.data import default_cache_dir

    return default_cache_dir()  # the embedded corpus lives there (scripts/test.sh builds it)


def test_two_training_mixes_are_scored_on_identical_tokens(cache):
    prose_only = prepare_data(data_config_from_dict(mix({"prose": 1.0})), cache)
    half = prepare_data(data_config_from_dict(mix({"prose": 0.5, "code": 0.5})), cache)
    assert [held.name for held in prose_only.eval_suite] == [held.name for held in half.eval_suite] == list(DOMAINS)
    for first, second in zip(prose_only.eval_suite, half.eval_suite, strict=True):
        assert first.sequences.tobytes() == second.sequences.tobytes()  # byte-identical eval tokens
        np.testing.assert_array_equal(first.window_bytes, second.window_bytes)
    assert prose_only.eval_suite_hash == half.eval_suite_hash
    assert prose_only.mix_hash != half.mix_hash


def test_a_source_never_trains_on_the_text_its_eval_set_holds_out(cache):
    data = prepare_data(data_config_from_dict(mix({"prose": 0.8, "code": 0.2})), cache)
    for split, held in zip(data.splits, data.eval_suite, strict=True):
        assert split.name == held.name
        last_training_id = split.train_windows * SEQUENCE_LENGTH  # windows cover ids [0, train_windows·L + 1)
        assert last_training_id <= held.start  # the held-out region predicts ids from held.start + 1 on


def test_held_out_region_holds_eval_bytes_of_text_in_whole_windows(cache):
    data = prepare_data(data_config_from_dict(mix({"code": 1.0}, eval_bytes=10_000)), cache)
    for held in data.eval_suite:
        assert held.window_bytes.sum() >= 10_000 > held.window_bytes[1:].sum()
        tokens = np.asarray(prepare_data(data_config_from_dict(mix({held.name: 1.0})), cache).splits[0].tokens)
        assert held.start + len(held.sequences) * SEQUENCE_LENGTH + 1 == len(tokens)  # it ends with the text


def test_custom_eval_sets_and_their_errors(cache, text_dir):
    local = {"name": "local", "kind": "files", "paths": [str(text_dir)]}
    data = prepare_data(data_config_from_dict(mix({"prose": 1.0}, eval_sets=[local], eval_bytes=512)), cache)
    assert [held.name for held in data.eval_suite] == ["local"]
    from scaling_lab.errors import ConfigError

    for bad in ([], [local, local], [{**local, "name": "all"}]):
        with pytest.raises(ConfigError, match=r"data.eval_sets"):
            data_config_from_dict(mix({"prose": 1.0}, eval_sets=bad))


def test_strided_subset_spans_the_whole_set_not_a_prefix():
    sequences = np.repeat(np.arange(128)[:, None], 9, axis=1)  # window i holds the value i
    held = EvalSet(name="x", sequences=sequences, window_bytes=np.full(128, 8), start=0, fingerprint="f")
    subset = held.strided(16 * 8)
    assert len(subset.sequences) == 16 and subset.sequences[:, 0].tolist() == list(range(0, 128, 8))
    assert subset.window_bytes.sum() == 16 * 8
    assert held.strided(None) is held and held.strided(10_000) is held


def test_byte_and_bpe_suites_score_the_same_text(cache):
    byte = prepare_data(data_config_from_dict(mix({"prose": 1.0})), cache)
    bpe = prepare_data(data_config_from_dict(mix({"prose": 1.0}, tokenizer={"kind": "bpe", "vocab_size": 512})), cache)
    assert byte.eval_suite_hash == bpe.eval_suite_hash  # the suite names text, not tokens
    from tokenizers import Tokenizer

    (path,) = (cache / "tokenizers").glob(f"bpe-{bpe.tokenizer_name.split('-')[-1]}*.json")
    decoder = Tokenizer.from_file(str(path))
    for by_byte, by_bpe in zip(byte.eval_suite, bpe.eval_suite, strict=True):
        byte_text = bytes(by_byte.sequences[:, 1:].astype(np.uint8).ravel()).replace(b"\0", b"")
        bpe_text = decoder.decode(by_bpe.sequences[:, 1:].ravel().tolist(), skip_special_tokens=True).encode()
        # the same end of the domain's text, up to less than one window of either tokenizer at the start
        assert byte_text.endswith(bpe_text[-3000:]) and bpe_text.endswith(byte_text[-3000:])
        assert abs(int(by_byte.window_bytes.sum()) - int(by_bpe.window_bytes.sum())) < 4 * SEQUENCE_LENGTH * 8
        assert by_bpe.window_bytes.sum() == len(bpe_text)  # bytes per id sum to the decoded text's bytes
