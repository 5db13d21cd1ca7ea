"""Sources through `datasets` (text, jsonl, parquet), tokenizers (byte, bpe, hf from a local folder), the corpus."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scaling_lab.data import data_config_from_dict, prepare_data
from scaling_lab.data.config import SourceConfig, TokenizerConfig
from scaling_lab.data.corpus import DOMAINS, build_corpus, corpus_dir, corpus_is_built
from scaling_lab.data.files import default_cache_dir, file_sha256
from scaling_lab.data.sources import load_source
from scaling_lab.data.tokenizer import make_tokenizer
from scaling_lab.errors import ConfigError, DataError


def all_text(source) -> list[str]:
    return [text for batch in source.documents() for text in batch]


def test_jsonl_and_parquet_read_the_text_field(jsonl_file, tmp_path):
    from_jsonl = load_source(SourceConfig(name="j", kind="files", paths=[str(jsonl_file)], text_field="body"), tmp_path)
    records = [json.loads(line)["body"] for line in jsonl_file.read_text().splitlines()]
    assert sorted(all_text(from_jsonl)) == sorted(records)
    parquet_file = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"body": records, "id": list(range(len(records)))}), parquet_file)
    from_parquet = load_source(
        SourceConfig(name="p", kind="files", paths=[str(tmp_path / "*.parquet")], text_field="body"), tmp_path
    )
    assert sorted(all_text(from_parquet)) == sorted(records)
    assert from_parquet.fingerprint != from_jsonl.fingerprint


def test_wrong_text_field_and_mixed_formats_are_clear(jsonl_file, text_dir, tmp_path):
    with pytest.raises(DataError, match=r"data.sources\[j\].text_field='text' is not a column .*'body'"):
        load_source(SourceConfig(name="j", kind="files", paths=[str(jsonl_file)]), tmp_path)
    with pytest.raises(ConfigError, match=r"data.sources\[m\].paths mix formats \['json', 'text'\]"):
        load_source(SourceConfig(name="m", kind="files", paths=[str(jsonl_file), str(text_dir)]), tmp_path)


def test_documents_are_read_in_a_fixed_shuffled_order_and_capped(text_dir, tmp_path):
    source = load_source(SourceConfig(name="t", kind="files", paths=[str(text_dir)]), tmp_path)
    first, again = all_text(source), all_text(source)
    files = sorted(text_dir.iterdir())
    assert first == again and sorted(first) == sorted(path.read_text() for path in files)
    assert first != [path.read_text() for path in files]  # shuffled once (seed 0), so the eval tail is a sample
    capped = load_source(SourceConfig(name="t", kind="files", paths=[str(text_dir)], max_documents=5), tmp_path)
    assert all_text(capped) == first[:5] and capped.fingerprint != source.fingerprint


def test_moved_folder_keeps_its_fingerprint(text_dir, tmp_path):
    before = load_source(SourceConfig(name="t", kind="files", paths=[str(text_dir)]), tmp_path / "c")
    moved = text_dir.rename(tmp_path / "elsewhere")
    after = load_source(SourceConfig(name="t", kind="files", paths=[str(moved / "*.txt")]), tmp_path / "c")
    assert before.fingerprint == after.fingerprint


def test_bpe_is_trained_saved_reused_and_round_trips(text_dir, tmp_path):
    source = load_source(SourceConfig(name="t", kind="files", paths=[str(text_dir)]), tmp_path)
    texts = lambda: (text for batch in source.documents() for text in batch)  # noqa: E731
    config = TokenizerConfig(kind="bpe", vocab_size=500)
    tokenizer = make_tokenizer(config, training_texts=texts, corpus_key=source.fingerprint, cache_dir=tmp_path)
    saved = list((tmp_path / "tokenizers").glob("bpe-*.json"))
    assert len(saved) == 1 and tokenizer.vocab_size == 500 and tokenizer.separator_id == 0
    again = make_tokenizer(config, training_texts=lambda: iter(()), corpus_key=source.fingerprint, cache_dir=tmp_path)
    assert again.identity == tokenizer.identity == hashlib.sha256(saved[0].read_bytes()).hexdigest()
    from tokenizers import Tokenizer

    sample = all_text(source)[0]
    ids = tokenizer.encode_batch([sample])[0]
    assert Tokenizer.from_file(str(saved[0])).decode(ids.tolist()) == sample
    assert len(ids) < len(sample.encode())


def test_hf_tokenizer_by_name_from_a_local_folder(text_dir, tmp_path):
    from transformers import PreTrainedTokenizerFast

    source = load_source(SourceConfig(name="t", kind="files", paths=[str(text_dir)]), tmp_path)
    bpe = make_tokenizer(
        TokenizerConfig(kind="bpe", vocab_size=300),
        training_texts=lambda: (text for batch in source.documents() for text in batch),
        corpus_key=source.fingerprint,
        cache_dir=tmp_path,
    )
    saved = next((tmp_path / "tokenizers").glob("bpe-*.json"))
    folder = tmp_path / "my_tokenizer"
    PreTrainedTokenizerFast(tokenizer_file=str(saved), eos_token="<|endoftext|>").save_pretrained(folder)
    config = data_config_from_dict(
        {
            "name": "hf_local",
            "sources": [{"name": "t", "kind": "files", "paths": [str(text_dir)]}],
            "tokenizer": {"kind": "hf", "name": str(folder)},
            "sequence_length": 32,
            "eval_bytes": 512,
        }
    )
    data = prepare_data(config, tmp_path / "cache")
    assert data.tokenizer_name == f"hf:{folder}" and data.vocab_size == bpe.vocab_size == 300
    batch = data.train_sequences(0, 4)
    assert batch.shape == (4, 33) and batch.max() < 300


def test_unknown_hf_tokenizer_folder_is_a_data_error(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # no network in tests
    from scaling_lab.data.tokenizer import hf_tokenizer

    with pytest.raises(DataError, match=r"data.tokenizer.name='no-such/tokenizer-xyz' could not be loaded"):
        hf_tokenizer(TokenizerConfig(kind="hf", name="no-such/tokenizer-xyz"))


def test_embedded_corpus_when_already_built():
    cache_dir = default_cache_dir()
    if not corpus_is_built(cache_dir):
        pytest.skip(f"embedded corpus not built in {cache_dir}: run `python -m scaling_lab.data.corpus build`")
    for name, domain in DOMAINS.items():
        assert file_sha256(corpus_dir(cache_dir) / f"{name}.jsonl") == domain.sha256
    config = data_config_from_dict(
        {
            "name": "embedded",
            "sources": [{"name": d, "kind": "embedded", "domain": d} for d in DOMAINS],
            "sequence_length": 128,
        }
    )
    data = prepare_data(config, cache_dir)
    sizes = data.describe()["sources"]
    assert sizes["prose"]["text_bytes"] == 5_924_542 and sizes["code"]["text_bytes"] == 5_543_856
    code_text = bytes(data.splits[1].tokens[:100_000]).decode("utf-8", errors="replace")
    assert "def " in code_text and "import " in code_text


@pytest.mark.slow
def test_corpus_builds_bit_for_bit_from_pypi(tmp_path):
    directory = build_corpus(tmp_path)
    assert {path.name for path in directory.iterdir()} == {"prose.jsonl", "code.jsonl"}
    assert all(file_sha256(directory / f"{n}.jsonl") == d.sha256 for n, d in DOMAINS.items())
    assert build_corpus(tmp_path) == directory  # idempotent


def test_corpus_archive_with_a_wrong_hash_is_refused(tmp_path):
    fake = tmp_path / "Django-5.1.4.tar.gz"
    fake.write_bytes(b"not the archive")
    with pytest.raises(DataError, match=r"does not have sha256 de450c09"):
        build_corpus(tmp_path / "cache", archive=fake)
    assert not corpus_dir(tmp_path / "cache").exists()


def test_tokens_are_the_utf8_bytes(text_dir, tmp_path):
    config = data_config_from_dict(
        {
            "name": "one",
            "sources": [{"name": "t", "kind": "files", "paths": [str(text_dir / "doc007.txt")]}],
            "sequence_length": 16,
            "eval_bytes": 64,
        }
    )
    data = prepare_data(config, tmp_path)
    assert bytes(np.asarray(data.splits[0].tokens)) == (text_dir / "doc007.txt").read_bytes() + b"\x00"


@pytest.mark.parametrize("streaming", [False, True])
def test_hub_kind_reads_a_dataset_folder_streamed_or_not(jsonl_file, tmp_path, streaming):
    folder = tmp_path / "my_dataset"
    (folder / "data").mkdir(parents=True)
    jsonl_file.rename(folder / "data" / "train.jsonl")
    source = SourceConfig(
        name="h", kind="hub", dataset=str(folder), split="train", text_field="body", streaming=streaming,
        max_documents=12,
    )  # fmt: skip
    loaded = load_source(source, tmp_path / "cache")
    texts = all_text(loaded)
    records = [json.loads(line)["body"] for line in (folder / "data" / "train.jsonl").read_text().splitlines()]
    assert len(texts) == 12 and set(texts) <= set(records)
    if streaming:
        assert texts == records[:12]  # a stream keeps its order and takes the first documents


def test_malformed_jsonl_is_a_data_error_naming_the_file(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine"}\n{"text": unquoted}\n')
    with pytest.raises(DataError, match=r"data.sources\[b\]: could not read 1 json file\(s\) starting .*broken.jsonl"):
        load_source(SourceConfig(name="b", kind="files", paths=[str(broken)]), tmp_path / "cache")


def test_corpus_build_without_a_registry_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # no registry reachable: pip finds nothing
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no_wheels_here"))
    with pytest.raises(DataError, match=r"embedded corpus: `pip download django==5.1.4` failed .*--archive") as caught:
        build_corpus(tmp_path / "cache")
    assert "\n" not in str(caught.value)
    assert not corpus_dir(tmp_path / "cache").exists()


def test_corpus_command_exits_2_with_one_error_line(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path / "none")}
    command = [sys.executable, "-m", "scaling_lab.data.corpus", "build", "--cache-dir", str(tmp_path / "cache")]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("error: embedded corpus:") and result.stderr.count("\n") == 1
