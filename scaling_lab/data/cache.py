"""The token cache: one memory-mapped id array per (source bytes, tokenizer), built once, shared safely.

Layout: ``<cache_dir>/tokens/<key>/tokens.bin`` (raw ids, dtype by vocabulary) and ``meta.json``
(length, dtype, sha256 of tokens.bin, source fingerprint, tokenizer identity). One process builds
under a `filelock` lock while the others wait; the folder is written under a temporary name and
renamed into place, so a half-written cache is never read. On open the length and checksum are
verified; a corrupt or partial cache is moved aside and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pathlib
import shutil
import tempfile
from dataclasses import dataclass

import numpy as np
from filelock import FileLock

from scaling_lab.data.files import file_sha256
from scaling_lab.data.sources import LoadedSource
from scaling_lab.data.tokenizer import Tokenizer
from scaling_lab.errors import DataError

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the layout or the document order changes: old caches are then ignored


@dataclass(frozen=True, kw_only=True)
class CachedTokens:
    """A source's ids, memory-mapped read-only."""

    tokens: np.ndarray
    """All ids of the source (documents in their fixed order, each followed by the separator), a read-only memmap."""
    key: str
    """Cache key: hash of (source fingerprint, tokenizer identity, cache format)."""
    path: pathlib.Path
    """The cache folder."""
    documents: int
    """Number of documents tokenized."""
    text_bytes: int
    """UTF-8 bytes of text tokenized."""
    built: bool
    """True when this call built the cache, False when it reused one."""


def cache_key(fingerprint: str, tokenizer: Tokenizer) -> str:
    """Hex key of a source's token cache."""
    material = f"v{CACHE_FORMAT}|{fingerprint}|{tokenizer.identity}|{tokenizer.separator_id}|{tokenizer.dtype}"
    return hashlib.sha256(material.encode()).hexdigest()[:24]


def _read_verified(folder: pathlib.Path) -> dict | None:
    """The cache's meta if tokens.bin has the recorded length and checksum, else None."""
    meta_path, tokens_path = folder / "meta.json", folder / "tokens.bin"
    if not (meta_path.is_file() and tokens_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        expected_bytes = int(meta["length"]) * np.dtype(meta["dtype"]).itemsize
    except (ValueError, KeyError, TypeError):
        return None
    if tokens_path.stat().st_size != expected_bytes or file_sha256(tokens_path) != meta["sha256"]:
        return None
    return meta


def _write(folder: pathlib.Path, source: LoadedSource, tokenizer: Tokenizer) -> dict:
    """Tokenize `source` into folder/tokens.bin and write meta.json; return the meta."""
    dtype = np.dtype(tokenizer.dtype)
    digest = hashlib.sha256()
    length = documents = text_bytes = 0
    separator = None if tokenizer.separator_id is None else np.array([tokenizer.separator_id], dtype=np.int64)
    with open(folder / "tokens.bin", "wb") as handle:
        for texts in source.documents():
            encoded = tokenizer.encode_batch(texts)
            pieces = []
            for ids in encoded:
                pieces.append(ids)
                if separator is not None:
                    pieces.append(separator)
            if not pieces:
                continue
            block = np.concatenate(pieces)
            if block.size and int(block.max()) >= tokenizer.vocab_size:
                raise DataError(f"tokenizer {tokenizer.name} produced id {int(block.max())} >= its vocabulary size")
            raw = block.astype(dtype, copy=False).tobytes()
            handle.write(raw)
            digest.update(raw)
            length += block.size
            documents += len(texts)
            text_bytes += sum(len(text.encode("utf-8")) for text in texts)
    if length == 0:
        raise DataError(f"data.sources[{source.config.name}] holds no text: add documents or remove the source")
    meta = {
        "format": CACHE_FORMAT,
        "length": length,
        "dtype": dtype.name,
        "sha256": digest.hexdigest(),
        "documents": documents,
        "text_bytes": text_bytes,
        "source": source.config.name,
        "source_fingerprint": source.fingerprint,
        "tokenizer": tokenizer.name,
        "tokenizer_identity": tokenizer.identity,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    return meta


def cached_tokens(source: LoadedSource, tokenizer: Tokenizer, cache_dir: pathlib.Path) -> CachedTokens:
    """The source's ids from the cache, tokenizing them first if no valid cache exists."""
    root = pathlib.Path(cache_dir) / "tokens"
    root.mkdir(parents=True, exist_ok=True)
    key = cache_key(source.fingerprint, tokenizer)
    folder = root / key
    built = False
    meta = _read_verified(folder)
    if meta is None:
        with FileLock(str(root / f"{key}.lock")):
            meta = _read_verified(folder)  # another process may have built it while we waited
            if meta is None:
                if folder.exists():
                    log.warning("token cache %s is corrupt or partial: rebuilding it", folder)
                    shutil.rmtree(folder)
                tmp = pathlib.Path(tempfile.mkdtemp(dir=root, prefix=f".{key}.tmp-"))
                try:
                    meta = _write(tmp, source, tokenizer)
                    os.replace(tmp, folder)
                finally:
                    if tmp.exists():
                        shutil.rmtree(tmp)
                built = True
    tokens = np.memmap(folder / "tokens.bin", dtype=meta["dtype"], mode="r", shape=(meta["length"],))
    return CachedTokens(
        tokens=tokens,
        key=key,
        path=folder,
        documents=meta["documents"],
        text_bytes=meta["text_bytes"],
        built=built,
    )
