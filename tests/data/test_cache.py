"""The token cache: reused, rebuilt on tokenizer change, corrupt or partial caches rebuilt, one builder at a time."""

from __future__ import annotations

import multiprocessing
import pathlib

import numpy as np
import pytest

from scaling_lab.data.cache import cached_tokens
from scaling_lab.data.config import SourceConfig, TokenizerConfig
from scaling_lab.data.sources import load_source
from scaling_lab.data.tokenizer import make_tokenizer


def tokens_of(text_dir: pathlib.Path, cache_dir: pathlib.Path, tokenizer_config: TokenizerConfig | None = None):
    source = load_source(SourceConfig(name="local", kind="files", paths=[str(text_dir)]), cache_dir)
    tokenizer = make_tokenizer(
        tokenizer_config or TokenizerConfig(),
        training_texts=lambda: (text for batch in source.documents() for text in batch),
        corpus_key=source.fingerprint,
        cache_dir=cache_dir,
    )
    return cached_tokens(source, tokenizer, cache_dir)


def test_cache_is_reused_on_a_second_call(text_dir, tmp_path):
    first = tokens_of(text_dir, tmp_path)
    second = tokens_of(text_dir, tmp_path)
    assert first.built and not second.built and first.key == second.key
    np.testing.assert_array_equal(first.tokens, second.tokens)
    assert first.tokens.dtype == np.uint8
    # byte tokens: every byte of the 40 files plus one separator per document
    text_bytes = sum(path.stat().st_size for path in text_dir.iterdir())
    assert first.text_bytes == text_bytes and len(first.tokens) == text_bytes + 40 == len(second.tokens)


def test_cache_is_rebuilt_when_the_tokenizer_changes(text_dir, tmp_path):
    byte = tokens_of(text_dir, tmp_path)
    bpe = tokens_of(text_dir, tmp_path, TokenizerConfig(kind="bpe", vocab_size=400))
    assert bpe.built and bpe.key != byte.key and bpe.tokens.dtype == np.uint16
    assert len(bpe.tokens) < 0.8 * len(byte.tokens)  # merges shorten the stream
    assert int(bpe.tokens.max()) < 400
    larger = tokens_of(text_dir, tmp_path, TokenizerConfig(kind="bpe", vocab_size=600))
    assert larger.built and larger.key != bpe.key
    assert not tokens_of(text_dir, tmp_path, TokenizerConfig(kind="bpe", vocab_size=400)).built


def test_cache_is_rebuilt_when_the_text_changes(text_dir, tmp_path):
    before = tokens_of(text_dir, tmp_path)
    (text_dir / "doc000.txt").write_text("new words\n" * 100)
    after = tokens_of(text_dir, tmp_path)
    assert after.built and after.key != before.key


@pytest.mark.parametrize("damage", ["flip_a_byte", "truncate", "drop_meta", "garble_meta"])
def test_corrupt_or_partial_cache_is_detected_and_rebuilt(text_dir, tmp_path, damage):
    good = tokens_of(text_dir, tmp_path)
    expected = np.array(good.tokens)
    tokens_path, meta_path = good.path / "tokens.bin", good.path / "meta.json"
    del good
    if damage == "flip_a_byte":
        raw = bytearray(tokens_path.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        tokens_path.write_bytes(bytes(raw))
    elif damage == "truncate":
        tokens_path.write_bytes(tokens_path.read_bytes()[:1000])
    elif damage == "drop_meta":
        meta_path.unlink()
    else:
        meta_path.write_text("{not json")
    rebuilt = tokens_of(text_dir, tmp_path)
    assert rebuilt.built
    np.testing.assert_array_equal(rebuilt.tokens, expected)


def test_leftover_temporary_build_is_never_read(text_dir, tmp_path):
    good = tokens_of(text_dir, tmp_path)
    key = good.key
    # a build that died half-way leaves only a temporary folder, never the final name
    partial = tmp_path / "tokens" / f".{key}.tmp-dead"
    partial.mkdir()
    (partial / "tokens.bin").write_bytes(b"\x00" * 10)
    again = tokens_of(text_dir, tmp_path)
    assert not again.built and len(again.tokens) == len(good.tokens)


def _build_in_child(text_dir: str, cache_dir: str, results) -> None:
    cached = tokens_of(pathlib.Path(text_dir), pathlib.Path(cache_dir))
    results.put((cached.built, cached.key, int(np.asarray(cached.tokens, dtype=np.int64).sum())))


def test_concurrent_jobs_build_once_and_share(text_dir, tmp_path):
    context = multiprocessing.get_context("fork")  # children start at once, without re-importing
    results = context.Queue()
    jobs = [context.Process(target=_build_in_child, args=(str(text_dir), str(tmp_path), results)) for _ in range(3)]
    for job in jobs:
        job.start()
    outcomes = [results.get(timeout=120) for _ in jobs]
    for job in jobs:
        job.join(timeout=60)
        assert job.exitcode == 0
    assert sorted(built for built, _, _ in outcomes) == [False, False, True]  # exactly one builder
    assert len({(key, total) for _, key, total in outcomes}) == 1  # all read the same ids
