"""Tokenizers: byte-level (default), a BPE trained on the configured sources, or a pretrained HF tokenizer.

Every tokenizer exposes a name, a vocabulary size, a document separator id and an `identity`
(a hash of everything that determines its ids), which keys the token cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from filelock import FileLock

from scaling_lab.data.config import BYTE_VOCAB_SIZE, TokenizerConfig, token_dtype_for
from scaling_lab.data.files import one_line
from scaling_lab.errors import DataError

END_OF_TEXT = "<|endoftext|>"
# A BPE learns from at most this many bytes of text, split evenly over the training sources (whole documents, in
# each source's fixed order: a random sample of a local source). Reddy et al. 2025 ("How much is enough? The
# diminishing returns of tokenization training data") train BPE on 1-900 GB of English: quality saturates near 150 GB,
# and the frequent tokens, which cover most of the text, stabilise first. 1 GiB, their smallest size, keeps training
# to minutes and the trainer's word counts to a few GB of memory on one machine; corpora below it (the embedded 11.5
# MB) train on all their text, as before.
BPE_SAMPLE_BYTES = 2**30
BYTE_SEPARATOR = 0  # NUL: absent from text, so the byte tokenizer uses it to mark the end of a document


@dataclass(frozen=True, kw_only=True)
class Tokenizer:
    """A text -> ids function with the facts the token cache and the records need."""

    name: str
    """Short name for records, e.g. 'byte', 'bpe-4096-1a2b3c4d', 'hf:gpt2'."""
    vocab_size: int
    """Number of ids (the model's embedding rows)."""
    separator_id: int | None
    """Id appended after every document (end of text), or None when the tokenizer has none."""
    identity: str
    """Hex hash of everything that determines the ids; part of the token cache key."""
    dtype: str
    """Cache dtype: uint8, uint16 or uint32."""
    encode_batch: Callable[[list[str]], list[np.ndarray]]
    """Texts -> one id array per text (no separator). Parallel over all cores for bpe and hf (Rust)."""
    token_bytes: np.ndarray
    """UTF-8 bytes of text each id stands for, shape (vocab_size,): 0 for the separator and other special tokens.
    Bits per byte divide by the sum of these over the scored ids, so they compare across tokenizers."""


def _encode_bytes(texts: list[str]) -> list[np.ndarray]:
    return [np.frombuffer(text.encode("utf-8"), dtype=np.uint8) for text in texts]


def byte_tokenizer(config: TokenizerConfig) -> Tokenizer:
    """One id per UTF-8 byte; NUL marks document ends."""
    token_bytes = np.ones(BYTE_VOCAB_SIZE, dtype=np.int64)
    token_bytes[BYTE_SEPARATOR] = 0  # the separator, never text (NUL does not occur in the corpora we read)
    return Tokenizer(
        name="byte",
        vocab_size=BYTE_VOCAB_SIZE,
        separator_id=BYTE_SEPARATOR,
        identity=hashlib.sha256(b"byte-utf8-v1").hexdigest(),
        dtype=token_dtype_for(BYTE_VOCAB_SIZE, config.dtype),
        encode_batch=_encode_bytes,
        token_bytes=token_bytes,
    )


def fast_token_bytes(backend, vocab_size: int) -> np.ndarray:  # backend: tokenizers.Tokenizer
    """UTF-8 bytes per id of a `tokenizers` tokenizer, special (added) tokens 0.

    Byte-level vocabularies (GPT-2's scheme, our BPE) spell every byte as one character, so a token's length is its
    byte count exactly; for other schemes the id is decoded alone (exact but for pieces of a multi-byte character)."""
    decoder = json.loads(backend.to_str()).get("decoder") or {}
    byte_level = "ByteLevel" in json.dumps(decoder)
    special = set(backend.get_added_tokens_decoder())
    lengths = np.zeros(vocab_size, dtype=np.int64)
    for token, index in backend.get_vocab(with_added_tokens=True).items():
        if index < vocab_size and index not in special:
            lengths[index] = len(token) if byte_level else len(backend.decode([index]).encode("utf-8"))
    return lengths


def _from_fast(backend, name: str, config: TokenizerConfig) -> Tokenizer:  # backend: tokenizers.Tokenizer
    serialized = backend.to_str()
    vocab_size = backend.get_vocab_size(with_added_tokens=True)
    separator = backend.token_to_id(END_OF_TEXT)

    def encode_batch(texts: list[str]) -> list[np.ndarray]:
        # tokenizers' Rust encode_batch runs on all cores (RAYON_NUM_THREADS / TOKENIZERS_PARALLELISM).
        return [np.asarray(encoding.ids, dtype=np.int64) for encoding in backend.encode_batch(texts)]

    return Tokenizer(
        name=name,
        vocab_size=vocab_size,
        separator_id=separator,
        identity=hashlib.sha256(serialized.encode("utf-8")).hexdigest(),
        dtype=token_dtype_for(vocab_size, config.dtype),
        encode_batch=encode_batch,
        token_bytes=fast_token_bytes(backend, vocab_size),
    )


def train_bpe(
    config: TokenizerConfig, texts: Callable[[], Iterator[str]], corpus_key: str, cache_dir: pathlib.Path
) -> Tokenizer:
    """A byte-level BPE of `config.vocab_size` trained on `texts()`, saved as tokenizer.json and reused.

    `corpus_key` identifies the training text (the sources' fingerprints); the saved file is keyed by it
    and the vocabulary size, built once under a lock and renamed into place.
    """
    from tokenizers import Tokenizer as FastTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    key = hashlib.sha256(f"bpe-v1|{config.vocab_size}|{corpus_key}".encode()).hexdigest()[:16]
    path = pathlib.Path(cache_dir) / "tokenizers" / f"bpe-{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            backend = FastTokenizer(models.BPE())
            backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            backend.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(
                vocab_size=config.vocab_size,
                special_tokens=[END_OF_TEXT],
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                show_progress=False,
            )
            backend.train_from_iterator(texts(), trainer=trainer)
            with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as handle:
                handle.write(backend.to_str())
            os.replace(handle.name, path)
    backend = FastTokenizer.from_file(str(path))
    return _from_fast(backend, f"bpe-{config.vocab_size}-{key[:8]}", config)


def hf_tokenizer(config: TokenizerConfig) -> Tokenizer:
    """A pretrained fast tokenizer from the hub (or a local folder) by name."""
    from transformers import AutoTokenizer

    from scaling_lab.data.sources import check_hub_reachable

    if not pathlib.Path(config.name).is_dir():
        check_hub_reachable(f"data.tokenizer.name={config.name!r}")
    try:
        pretrained = AutoTokenizer.from_pretrained(config.name, revision=config.revision, use_fast=True)
    except Exception as error:  # hub, network and file errors all mean: cannot load it
        raise DataError(
            f"data.tokenizer.name={config.name!r} could not be loaded ({one_line(error)}): check the "
            "name and network, or point it at a local folder"
        ) from None
    backend = getattr(pretrained, "backend_tokenizer", None)
    if backend is None:
        raise DataError(f"data.tokenizer.name={config.name!r} has no fast (Rust) tokenizer: choose one that does")
    tokenizer = _from_fast(backend, f"hf:{config.name}", config)
    separator = pretrained.eos_token_id
    identity = hashlib.sha256(f"{tokenizer.identity}|{separator}".encode()).hexdigest()
    vocab_size = max(tokenizer.vocab_size, len(pretrained))
    token_bytes = np.zeros(vocab_size, dtype=np.int64)
    token_bytes[: tokenizer.vocab_size] = tokenizer.token_bytes
    if separator is not None:
        token_bytes[separator] = 0
    return Tokenizer(
        name=tokenizer.name,
        vocab_size=vocab_size,
        separator_id=separator,
        identity=identity,
        dtype=tokenizer.dtype,
        encode_batch=tokenizer.encode_batch,
        token_bytes=token_bytes,
    )


def make_tokenizer(
    config: TokenizerConfig,
    *,
    training_texts: Callable[[], Iterable[str]] | None = None,
    corpus_key: str = "",
    cache_dir: pathlib.Path | None = None,
) -> Tokenizer:
    """The tokenizer `config` asks for. BPE needs `training_texts`, `corpus_key` and `cache_dir`."""
    if config.kind == "byte":
        return byte_tokenizer(config)
    if config.kind == "hf":
        return hf_tokenizer(config)
    if training_texts is None or cache_dir is None:
        raise ValueError("a BPE tokenizer needs training_texts and cache_dir")
    return train_bpe(config, lambda: iter(training_texts()), corpus_key, cache_dir)


def planned_vocab_size(config: TokenizerConfig) -> int | None:
    """The vocabulary size known from the config alone (byte: 256, bpe: vocab_size), for dry runs that must
    not tokenize; None for hf, whose size is known only once the tokenizer is loaded."""
    if config.kind == "byte":
        return BYTE_VOCAB_SIZE
    if config.kind == "bpe":
        return config.vocab_size
    return None
