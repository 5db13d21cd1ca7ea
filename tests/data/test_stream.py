"""The training stream and eval set: determinism, seeds, batch-size invariance, disjoint eval, mix proportions."""

from __future__ import annotations

import pathlib
import re
import warnings

import numpy as np
import pytest

from scaling_lab.data import TokenData, data_config_from_dict, prepare_data
from scaling_lab.data.mixture import MixSchedule

SEQUENCE_LENGTH = 64


def local_config(paths: dict[str, tuple[pathlib.Path, float]], *, seed: int = 0, eval_bytes: int = 2048, **extra):
    """A mix of local folders, scored on held-out text of each (as configs/data/local_files.yaml does)."""
    sources = [
        {"name": name, "kind": "files", "paths": [str(path)], "weight": weight}
        for name, (path, weight) in paths.items()
    ]
    return data_config_from_dict(
        {
            "name": "test_mix",
            "sources": sources,
            "eval_sets": [{key: value for key, value in source.items() if key != "weight"} for source in sources],
            "sequence_length": SEQUENCE_LENGTH,
            "eval_bytes": eval_bytes,
            "seed": seed,
            **extra,
        }
    )


@pytest.fixture
def cache_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "cache"


def test_stream_shape_dtype_and_vocabulary(text_dir, cache_dir):
    data = prepare_data(local_config({"local": (text_dir, 1.0)}), cache_dir)
    batch = data.train_sequences(0, 8)
    assert batch.shape == (8, SEQUENCE_LENGTH + 1) and batch.dtype == np.int64
    assert data.vocab_size == 256 and data.tokenizer_name == "byte" and data.sequence_length == SEQUENCE_LENGTH
    assert batch.min() >= 0 and batch.max() < data.vocab_size
    (held,) = data.eval_suite
    assert held.name == "local" and held.sequences.shape[1] == SEQUENCE_LENGTH + 1
    assert held.window_bytes.sum() >= 2048 > held.window_bytes[1:].sum()  # whole windows, the fewest that hold 2048
    text = bytes(batch[0].astype(np.uint8)).decode("utf-8", errors="replace")
    assert "[" in text  # the real marked lines come back as bytes


def test_same_seed_same_batches_different_seed_differs(text_dir, cache_dir):
    first = prepare_data(local_config({"local": (text_dir, 1.0)}, seed=1), cache_dir)
    again = prepare_data(local_config({"local": (text_dir, 1.0)}, seed=1), cache_dir)
    other = prepare_data(local_config({"local": (text_dir, 1.0)}, seed=2), cache_dir)
    np.testing.assert_array_equal(first.train_sequences(0, 64), again.train_sequences(0, 64))
    assert not np.array_equal(first.train_sequences(0, 64), other.train_sequences(0, 64))
    # the eval suite and the mix hash do not depend on the seed
    np.testing.assert_array_equal(first.eval_suite[0].sequences, other.eval_suite[0].sequences)
    assert first.mix_hash == other.mix_hash and first.eval_suite_hash == other.eval_suite_hash


def test_stream_is_independent_of_batch_size_and_resume(text_dir, cache_dir):
    data = prepare_data(local_config({"local": (text_dir, 1.0)}), cache_dir)
    whole = data.train_sequences(0, 96)
    by_eights = np.concatenate([data.train_sequences(step * 8, 8) for step in range(12)])
    np.testing.assert_array_equal(whole, by_eights)
    resumed = prepare_data(local_config({"local": (text_dir, 1.0)}), cache_dir)  # a fresh process on resume
    np.testing.assert_array_equal(resumed.train_sequences(40, 24), whole[40:64])


def test_epochs_wrap_with_fresh_order_and_full_coverage(text_dir, cache_dir):
    data = prepare_data(local_config({"local": (text_dir, 1.0)}), cache_dir)
    windows = data.splits[0].train_windows
    first, second = data.train_sequences(0, windows), data.train_sequences(windows, windows)
    # every training window once per epoch, in a different order in the next epoch
    assert np.unique(first, axis=0).shape[0] == windows
    np.testing.assert_array_equal(np.unique(first, axis=0), np.unique(second, axis=0))
    assert not np.array_equal(first, second)
    far = data.train_sequences(10**9, 4)  # any index works
    assert far.shape == (4, SEQUENCE_LENGTH + 1)
    assert data.epochs(windows * SEQUENCE_LENGTH) == {"local": pytest.approx(1.0)}


def test_eval_suite_never_appears_in_training(text_dir, cache_dir):
    data = prepare_data(local_config({"local": (text_dir, 1.0)}, eval_bytes=4096), cache_dir)
    windows = data.splits[0].train_windows
    training = data.train_sequences(0, 2 * windows)  # two full epochs: every training window
    training_text = b"\x01".join(bytes(row.astype(np.uint8)) for row in training)
    evaluation = data.eval_suite[0].sequences
    assert 4096 // SEQUENCE_LENGTH <= len(evaluation) <= 4096 // SEQUENCE_LENGTH + 1  # one id a byte, and separators
    markers = [re.findall(rb"\[\d{3}\.\d{3}\]", bytes(row.astype(np.uint8))) for row in evaluation]
    assert all(markers)  # every eval row holds whole line markers (lines are < 65 bytes)
    for row_markers in markers:
        for marker in row_markers:  # each line's marker is unique in the corpus
            assert marker not in training_text


def test_mix_proportions_within_one_percent(make_documents, tmp_path, cache_dir):
    prose = make_documents(tmp_path / "a", n_documents=30, lines_per_document=60, tag="a")
    code = make_documents(tmp_path / "b", n_documents=30, lines_per_document=60, tag="b")
    third = make_documents(tmp_path / "c", n_documents=30, lines_per_document=60, tag="c")
    weights = {"a": 0.6, "b": 0.3, "c": 0.1}
    data = prepare_data(local_config({"a": (prose, 0.6), "b": (code, 0.3), "c": (third, 0.1)}, seed=5), cache_dir)
    window = -(-100_000 // SEQUENCE_LENGTH)  # sequences in 1e5 tokens
    start = 12_345
    batch = data.train_sequences(start, 20 * window)
    marker = {name: f"[{name}".encode() for name in weights}
    sources = np.array([next(name for name in weights if marker[name] in bytes(row.astype(np.uint8))) for row in batch])
    for name, weight in weights.items():
        hits = np.concatenate([[0], np.cumsum(sources == name)])
        shares = (hits[window:] - hits[:-window]) / window  # every window of 1e5 tokens
        assert np.abs(shares - weight).max() < 0.01, name
    # every set of the suite is scored whole, whatever the weights: no set's text is sampled by the mix
    for held in data.eval_suite:
        rows = [bytes(row.astype(np.uint8)) for row in held.sequences]
        assert all(marker[held.name] in row for row in rows if b"[" in row), held.name


def test_schedule_is_a_bijection_onto_each_source():
    schedule = MixSchedule([0.2, 0.5, 0.3, 0.7, 0.05], seed=11)
    source, local = schedule.assign(np.arange(50_000))
    for s in range(5):
        np.testing.assert_array_equal(local[source == s], np.arange((source == s).sum()))
    np.testing.assert_array_equal(schedule.counts(50_000), np.bincount(source, minlength=5))


def test_epochs_warn_above_four(text_dir, cache_dir):
    data = prepare_data(local_config({"local": (text_dir, 1.0)}), cache_dir)
    train_tokens = data.splits[0].train_windows * SEQUENCE_LENGTH
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert data.epochs(3 * train_tokens)["local"] == pytest.approx(3.0)
    with pytest.warns(UserWarning, match="Muennighoff"):
        assert data.epochs(5 * train_tokens)["local"] == pytest.approx(5.0)


def test_mix_hash_tracks_weights_and_content(make_documents, tmp_path, cache_dir):
    a = make_documents(tmp_path / "a", n_documents=20, lines_per_document=60, tag="a")
    b = make_documents(tmp_path / "b", n_documents=20, lines_per_document=60, tag="b")
    base = prepare_data(local_config({"a": (a, 1.0), "b": (b, 1.0)}), cache_dir)
    same = prepare_data(local_config({"a": (a, 2.0), "b": (b, 2.0)}), cache_dir)  # same normalized weights
    reweighted = prepare_data(local_config({"a": (a, 1.0), "b": (b, 3.0)}), cache_dir)
    assert base.mix_hash == same.mix_hash != reweighted.mix_hash
    (a / "doc000.txt").write_text("changed text " * 500)
    changed = prepare_data(local_config({"a": (a, 1.0), "b": (b, 1.0)}), cache_dir)
    assert changed.mix_hash != base.mix_hash
    assert isinstance(changed, TokenData) and changed.describe()["mix_hash"] == changed.mix_hash
