"""The sharded token cache: parallel = serial = the definition, a killed build resumes, streams, the BPE sample."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pytest

from scaling_lab.data import bpe_training_sample, cache
from scaling_lab.data.cache import BUILD_SUFFIX, CACHE_FORMAT, cache_key, cached_tokens
from scaling_lab.data.config import SourceConfig, TokenizerConfig
from scaling_lab.data.files import file_sha256
from scaling_lab.data.sources import load_source
from scaling_lab.data.tokenizer import make_tokenizer
from scaling_lab.errors import DataError

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]


def files_source(folder: pathlib.Path, cache_dir: pathlib.Path):
    return load_source(SourceConfig(name="local", kind="files", paths=[str(folder)]), cache_dir)


def tokenizer_for(kind: str, source, cache_dir: pathlib.Path):
    config = TokenizerConfig() if kind == "byte" else TokenizerConfig(kind="bpe", vocab_size=400)
    return make_tokenizer(config, training_texts=lambda: bpe_training_sample([source]), corpus_key=source.fingerprint,
                          cache_dir=cache_dir)  # fmt: skip


def by_definition(source, tokenizer) -> np.ndarray:
    """Every document's ids followed by the separator, in the source's order: what the cache must hold."""
    texts = [text for batch in source.documents() for text in batch]
    return np.concatenate([np.append(ids, tokenizer.separator_id) for ids in tokenizer.encode_batch(texts)])


@pytest.mark.parametrize("kind", ["byte", "bpe"])
def test_parallel_shards_equal_one_serial_shard_and_the_definition(kind, text_dir, tmp_path, capfd):
    source = files_source(text_dir, tmp_path / "hf")
    tokenizer = tokenizer_for(kind, source, tmp_path)
    parallel = cached_tokens(source, tokenizer, tmp_path / "parallel", workers=2, shard_documents=7)  # 6 shards
    serial = cached_tokens(source, tokenizer, tmp_path / "serial", workers=1, shard_documents=10**6)  # 1 shard
    np.testing.assert_array_equal(parallel.tokens, by_definition(source, tokenizer))
    np.testing.assert_array_equal(parallel.tokens, serial.tokens)
    parallel_meta, serial_meta = (json.loads((c.path / "meta.json").read_text()) for c in (parallel, serial))
    assert parallel_meta == serial_meta and parallel.documents == 40
    assert sorted(path.name for path in parallel.path.iterdir()) == ["meta.json", "tokens.bin"]  # shards all gone
    assert not list((tmp_path / "parallel" / "tokens").glob(".*.build"))
    assert "huggingface/tokenizers" not in capfd.readouterr().err  # no fork warning from the workers


KILLED_BUILD = """
import pathlib, sys
from scaling_lab.data import cache
from scaling_lab.data.cache import BUILD_SUFFIX, CACHE_FORMAT, cache_key, cached_tokens
from scaling_lab.data.config import SourceConfig, TokenizerConfig
from scaling_lab.data.files import file_sha256
from scaling_lab.data.sources import load_source
from scaling_lab.data.tokenizer import make_tokenizer

def wait_to_be_killed(index):
    print(index, flush=True)
    sys.stdin.readline()  # the test kills this process while it waits here

cache_dir = pathlib.Path(sys.argv[2])
source = load_source(SourceConfig(name="local", kind="files", paths=[sys.argv[1]]), cache_dir)
cached_tokens(source, make_tokenizer(TokenizerConfig()), cache_dir, workers=1, shard_documents=7,
              on_shard=wait_to_be_killed)
"""


def test_a_killed_build_resumes_from_its_completed_shards(text_dir, tmp_path):
    cache_dir = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    command = [sys.executable, "-c", KILLED_BUILD, str(text_dir), str(cache_dir)]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                          start_new_session=True) as child:  # fmt: skip
        try:
            first = int(child.stdout.readline())  # the first shard is done
            (build,) = (cache_dir / "tokens").glob(".*.build")
            assert (build / f"shard-{first:05d}.json").is_file() and (build / f"shard-{first:05d}.bin").is_file()
        finally:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert not [path for path in (cache_dir / "tokens").iterdir() if path.is_dir() and path != build]  # no cache yet

    source = files_source(text_dir, cache_dir)
    tokenized: list[int] = []
    resumed = cached_tokens(source, make_tokenizer(TokenizerConfig()), cache_dir, workers=1, shard_documents=7,
                            on_shard=tokenized.append)  # fmt: skip
    assert resumed.built and first not in tokenized and sorted([first, *tokenized]) == list(range(6))
    fresh = cached_tokens(source, make_tokenizer(TokenizerConfig()), tmp_path / "fresh", workers=1)
    np.testing.assert_array_equal(resumed.tokens, fresh.tokens)
    assert not build.exists()


def test_a_build_killed_while_appending_its_shards_resumes_to_the_same_file_and_checksum(text_dir, tmp_path):
    """The state a kill leaves while the shards are appended to tokens.bin: shard 0 appended and deleted, half of
    shard 1 appended, shards 1-5 still on disk. The resumed build cuts the half off, hashes what it keeps and appends
    the rest: the ids and the checksum (hashed while appending) are a fresh build's, and the checksum is the file's."""
    source = files_source(text_dir, tmp_path / "hf")
    tokenizer = make_tokenizer(TokenizerConfig())
    fresh = cached_tokens(source, tokenizer, tmp_path / "fresh", workers=1, shard_documents=7)
    build = tmp_path / "cache" / "tokens" / f".{cache_key(source.fingerprint, tokenizer)}{BUILD_SUFFIX}"
    build.mkdir(parents=True)
    shards = cache._tokenize(build, source, tokenizer, workers=1, shard_documents=7, on_shard=None)
    (build / "plan.json").write_text(json.dumps({"format": CACHE_FORMAT, "shard_documents": 7, "shards": shards}))
    first, second = (cache._shard_path(build, index, ".bin") for index in (0, 1))
    (build / "tokens.bin").write_bytes(first.read_bytes() + second.read_bytes()[: second.stat().st_size // 2])
    first.unlink()

    resumed = cached_tokens(source, tokenizer, tmp_path / "cache", workers=1, shard_documents=7)
    np.testing.assert_array_equal(resumed.tokens, fresh.tokens)
    meta = json.loads((resumed.path / "meta.json").read_text())
    assert meta == json.loads((fresh.path / "meta.json").read_text())
    assert meta["sha256"] == file_sha256(resumed.path / "tokens.bin") and not build.exists()


def test_a_stream_is_tokenized_in_order_with_a_progress_bar(jsonl_file, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "my_dataset"
    (folder / "data").mkdir(parents=True)
    jsonl_file.rename(folder / "data" / "train.jsonl")
    config = SourceConfig(name="stream", kind="hub", dataset=str(folder), text_field="body", streaming=True,
                          max_documents=25)  # fmt: skip
    source = load_source(config, tmp_path / "hf")
    tokenizer = make_tokenizer(TokenizerConfig())
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # the bar is drawn on a terminal only
    shards: list[int] = []
    cached = cached_tokens(source, tokenizer, tmp_path / "cache", shard_documents=4, on_shard=shards.append)
    records = [json.loads(line)["body"] for line in (folder / "data" / "train.jsonl").read_text().splitlines()]
    assert bytes(np.asarray(cached.tokens)) == b"".join(text.encode() + b"\x00" for text in records[:25])
    assert shards == list(range(7)) and cached.documents == 25
    bar = capsys.readouterr().err
    assert "tokenizing stream" in bar and "25.0/25.0" in bar


def test_a_source_without_text_fails_and_leaves_no_build(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"text": ""}\n' * 5)
    source = load_source(SourceConfig(name="blank", kind="files", paths=[str(empty)]), tmp_path / "hf")
    with pytest.raises(DataError, match=r"data.sources\[blank\] holds no text"):
        cached_tokens(source, make_tokenizer(TokenizerConfig()), tmp_path / "cache", shard_documents=2)
    assert all(path.suffix == ".lock" for path in (tmp_path / "cache" / "tokens").iterdir())  # the lock only


def test_the_bpe_sample_is_bounded_and_shared_by_the_sources(make_documents, tmp_path):
    first = files_source(make_documents(tmp_path / "a", n_documents=20, lines_per_document=60, tag="a"), tmp_path)
    second = files_source(make_documents(tmp_path / "b", n_documents=20, lines_per_document=60, tag="b"), tmp_path)
    everything = [text for source in (first, second) for batch in source.documents() for text in batch]
    assert list(bpe_training_sample([first, second])) == everything  # under the bound: all the text, in order
    sample = list(bpe_training_sample([first, second], sample_bytes=20_000))
    largest = max(len(text.encode()) for text in everything)
    per_source = [sum(len(t.encode()) for t in sample if t.startswith(f"[{tag}")) for tag in "ab"]
    assert all(10_000 <= taken < 10_000 + largest for taken in per_source)  # each its half, whole documents
