"""Small file helpers shared by the corpus builder and the token cache."""

from __future__ import annotations

import hashlib
import os
import pathlib


def default_cache_dir() -> pathlib.Path:
    """$SCALING_LAB_CACHE, else ~/.cache/scaling_lab (corpus, tokenizers, token caches, hub datasets)."""
    return pathlib.Path(os.environ.get("SCALING_LAB_CACHE", pathlib.Path.home() / ".cache" / "scaling_lab"))


def file_sha256(path: pathlib.Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def one_line(error: BaseException, limit: int = 200) -> str:
    """'Type: message' of an exception on one line, cut to `limit` characters, for a DataError's reason."""
    return f"{type(error).__name__}: {' '.join(str(error).split())[:limit]}"
