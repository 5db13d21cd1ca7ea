"""The token cache: one memory-mapped id array per (source bytes, tokenizer), built once, shared safely.

Layout: ``<cache_dir>/tokens/<key>/tokens.bin`` (raw ids, dtype by vocabulary) and ``meta.json``
(length, dtype, sha256 of tokens.bin, source fingerprint, tokenizer identity). One process builds
under a `filelock` lock while the others wait. On open the length and checksum are verified; a
corrupt or partial cache is moved aside and rebuilt.

A build is sharded and resumable. It works in ``tokens/.<key>.build/``: ``plan.json`` (the manifest: format,
documents per shard, and once every shard is done their count), then per shard of ``shard_documents``
consecutive documents ``shard-NNNNN.bin`` and, written after it, ``shard-NNNNN.json`` (documents, text bytes,
ids and the sha256 of the shard). Shards of a local or downloaded source are tokenized in parallel by forked
worker processes, each reading its own documents from the memory-mapped Arrow table, so reading, encoding and
writing all scale with cores (a pool fed by one reader would serialize on the reader; `tokenizers`' own Rust
threads parallelize only the encoding). A streamed hub source is read in order by this process, one shard per
batch, its tokenizer using its own threads. The shards are then appended in order to ``tokens.bin``, each deleted
once appended (so the disk holds the ids about once, not twice), and the folder is renamed into place: readers
see the same single file as an unsharded build, with identical ids. A build killed at any point resumes from the
shards whose ``.json`` says they are done (verified by checksum); a kill while appending truncates ``tokens.bin`` to
the shards already deleted and appends the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import multiprocessing
import os
import pathlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from filelock import FileLock
from tqdm.auto import tqdm

from scaling_lab.cores import usable_cores
from scaling_lab.data.files import file_sha256
from scaling_lab.data.sources import LoadedSource
from scaling_lab.data.tokenizer import Tokenizer
from scaling_lab.errors import DataError, ScalingLabError

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the layout or the document order changes: old caches are then ignored
# Documents per shard: the unit of parallel work and of what a killed build loses. 4096 documents are 3-30 MB of
# text for typical corpora (TinyStories ~0.8 kB a document, web text ~4 kB), seconds of work per core, so the
# per-shard costs (a task, two files, a checksum) stay negligible while a 1 GB corpus still splits into hundreds
# of shards that balance across cores.
SHARD_DOCUMENTS = 4096
BUILD_SUFFIX = ".build"
APPEND_BLOCK_BYTES = 1 << 24  # 16 MiB reads while appending shards: few system calls, little memory


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


def _encoded(tokenizer: Tokenizer, texts: list[str]) -> np.ndarray:
    """The ids of `texts`, each document followed by the separator, in the cache dtype."""
    separator = None if tokenizer.separator_id is None else np.array([tokenizer.separator_id], dtype=np.int64)
    pieces = []
    for ids in tokenizer.encode_batch(texts):
        pieces.append(ids)
        if separator is not None:
            pieces.append(separator)
    block = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    if block.size and int(block.max()) >= tokenizer.vocab_size:
        raise DataError(f"tokenizer {tokenizer.name} produced id {int(block.max())} >= its vocabulary size")
    return block.astype(tokenizer.dtype, copy=False)


def _shard_path(build: pathlib.Path, index: int, suffix: str) -> pathlib.Path:
    return build / f"shard-{index:05d}{suffix}"


def _write_json(path: pathlib.Path, value: dict) -> None:
    """Write JSON by a rename, so that a reader (or a resumed build) sees the whole file or none."""
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(value, indent=1, sort_keys=True))
    os.replace(partial, path)


def _write_shard(build: pathlib.Path, index: int, tokenizer: Tokenizer, batches: Iterator[list[str]]) -> dict:
    """Tokenize `batches` into shard `index` (.bin, then its .json, each renamed into place); return the .json."""
    digest = hashlib.sha256()
    length = documents = text_bytes = 0
    partial = _shard_path(build, index, ".bin.part")
    with open(partial, "wb") as handle:
        for texts in batches:
            raw = _encoded(tokenizer, texts).tobytes()
            handle.write(raw)
            digest.update(raw)
            length += len(raw) // np.dtype(tokenizer.dtype).itemsize
            documents += len(texts)
            text_bytes += sum(len(text.encode("utf-8")) for text in texts)
    os.replace(partial, _shard_path(build, index, ".bin"))
    shard = {"index": index, "length": length, "sha256": digest.hexdigest(), "documents": documents,
             "text_bytes": text_bytes}  # fmt: skip
    _write_json(_shard_path(build, index, ".json"), shard)
    return shard


_worker_job: tuple[LoadedSource, Tokenizer, pathlib.Path, int] | None = None  # set in each forked worker


def _start_worker(source: LoadedSource, tokenizer: Tokenizer, build: pathlib.Path, shard_documents: int) -> None:
    global _worker_job
    _worker_job = (source, tokenizer, build, shard_documents)
    # One thread per worker: the processes are the parallelism (tokenizers reads this at every encode_batch).
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def _tokenize_shard(index: int) -> dict:
    """Shard `index` of the worker's source: its own range of documents, read, encoded and written here."""
    assert _worker_job is not None, "_tokenize_shard runs in a pool started by _start_worker"
    source, tokenizer, build, shard_documents = _worker_job
    start = index * shard_documents
    return _write_shard(build, index, tokenizer, source.documents(start=start, stop=start + shard_documents))


@contextlib.contextmanager
def _tokenizers_threads(enabled: bool) -> Iterator[None]:
    """Let `tokenizers` encode on its threads (unless the user turned them off), or on this one only (one worker means
    one core). The library reads the variable at every encode_batch; set, it also silences its warning at a fork."""
    previous = os.environ.get("TOKENIZERS_PARALLELISM")
    os.environ["TOKENIZERS_PARALLELISM"] = (previous or "true") if enabled else "false"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TOKENIZERS_PARALLELISM"]
        else:
            os.environ["TOKENIZERS_PARALLELISM"] = previous


@contextlib.contextmanager
def _forked_pool(workers: int, initargs: tuple) -> Iterator[multiprocessing.pool.Pool]:
    """A pool of forked workers. Forking keeps the dataset and the tokenizer (closures over Rust objects) without
    pickling them; each worker then turns `tokenizers`' threads off itself."""
    with _tokenizers_threads(True):
        pool = multiprocessing.get_context("fork").Pool(workers, initializer=_start_worker, initargs=initargs)
    with pool:
        yield pool


def _done_shards(build: pathlib.Path, dtype: np.dtype, verify: bool) -> dict[int, dict]:
    """Shards whose .json exists; with `verify`, only those whose .bin has the recorded length and checksum."""
    done = {}
    for path in sorted(build.glob("shard-*.json")):
        try:
            shard = json.loads(path.read_text())
            index, expected = int(shard["index"]), int(shard["length"]) * dtype.itemsize
        except (ValueError, KeyError, TypeError):
            continue
        binary = _shard_path(build, index, ".bin")
        if verify and not (binary.is_file() and binary.stat().st_size == expected and file_sha256(binary) ==
                           shard["sha256"]):  # fmt: skip
            continue
        done[index] = shard
    return done


def _tokenize(build: pathlib.Path, source: LoadedSource, tokenizer: Tokenizer, *, workers: int,
              shard_documents: int, on_shard: Callable[[int], None] | None) -> int:  # fmt: skip
    """Tokenize every shard not yet done into `build`; return the number of shards."""
    done = _done_shards(build, np.dtype(tokenizer.dtype), verify=True)
    count = source.document_count()
    if done:
        log.warning("token cache build %s resumes after %d shard(s) already done", build, len(done))
    total = count if count is not None else source.config.max_documents  # a stream's bound (required to stream)
    bar = tqdm(total=total, unit="doc", unit_scale=True, desc=f"tokenizing {source.config.name}", disable=None,
               dynamic_ncols=True)  # fmt: skip
    with bar:

        def finished(shard: dict) -> None:
            bar.update(min(shard_documents, (total or math.inf) - shard["index"] * shard_documents))
            if on_shard is not None:
                on_shard(shard["index"])

        if count is None:  # a stream: read in order, one shard per batch, resumed after the shards done before
            first = 0
            while first in done:  # the stream resumes after its first shards; any later ones are written again
                first += 1
            bar.update(min(first * shard_documents, total or math.inf))
            batches = source.documents(shard_documents, start=first * shard_documents)
            with _tokenizers_threads(workers > 1):
                for index, texts in enumerate(batches, start=first):
                    finished(_write_shard(build, index, tokenizer, iter([texts])))
            return len(_done_shards(build, np.dtype(tokenizer.dtype), verify=False))
        shards = math.ceil(count / shard_documents)
        todo = [index for index in range(shards) if index not in done]
        bar.update(sum(min(shard_documents, count - index * shard_documents) for index in done))
        can_fork = "fork" in multiprocessing.get_all_start_methods() and not multiprocessing.current_process().daemon
        if workers > 1 and len(todo) > 1 and can_fork:  # (a daemonic process, e.g. a pool's worker, may not fork)
            with _forked_pool(min(workers, len(todo)), (source, tokenizer, build, shard_documents)) as pool:
                for shard in pool.imap_unordered(_tokenize_shard, todo):
                    finished(shard)
        else:  # one process: `tokenizers` may use its threads when more than one core is granted
            with _tokenizers_threads(workers > 1):
                for index in todo:
                    start = index * shard_documents
                    batches = source.documents(start=start, stop=start + shard_documents)
                    finished(_write_shard(build, index, tokenizer, batches))
        return shards


def _concatenate(build: pathlib.Path, shards: list[dict], dtype: np.dtype) -> str:
    """Append the shards in order to build/tokens.bin, deleting each once appended; return the sha256 of tokens.bin,
    hashed as its bytes are written (one pass over the ids instead of a second read: hashing is most of this serial
    step). After a kill, the shards already deleted are exactly those in tokens.bin; whatever came after them is cut
    off and appended again, and the part kept is read once to hash it."""
    appended = 0
    while appended < len(shards) and not _shard_path(build, shards[appended]["index"], ".bin").exists():
        appended += 1
    if any(not _shard_path(build, shard["index"], ".bin").exists() for shard in shards[appended:]):
        raise FileNotFoundError(f"token cache build {build} lost a shard that was never appended")
    target = build / "tokens.bin"
    target.touch()
    digest = hashlib.sha256()
    with open(target, "r+b") as handle:
        handle.truncate(sum(shard["length"] for shard in shards[:appended]) * dtype.itemsize)
        for block in iter(lambda: handle.read(APPEND_BLOCK_BYTES), b""):  # appended before a kill
            digest.update(block)
        for shard in shards[appended:]:
            path = _shard_path(build, shard["index"], ".bin")
            with open(path, "rb") as piece:
                for block in iter(lambda: piece.read(APPEND_BLOCK_BYTES), b""):
                    handle.write(block)
                    digest.update(block)
            handle.flush()  # in the file before its shard goes: a kill can lose the process, not written bytes
            path.unlink()
    return digest.hexdigest()


def _build(build: pathlib.Path, source: LoadedSource, tokenizer: Tokenizer, *, workers: int, shard_documents: int,
           on_shard: Callable[[int], None] | None) -> dict:  # fmt: skip
    """Build (or resume building) the cache in `build`: shards, then tokens.bin and meta.json; return the meta."""
    dtype = np.dtype(tokenizer.dtype)
    plan_path = build / "plan.json"
    expected_plan = {"format": CACHE_FORMAT, "shard_documents": shard_documents}
    try:
        plan = json.loads(plan_path.read_text())
    except (OSError, ValueError):
        plan = {}
    if {key: plan.get(key) for key in expected_plan} != expected_plan:  # none yet, or another layout: start afresh
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir(parents=True)
        plan = expected_plan
        _write_json(plan_path, plan)
    if plan.get("shards") is None:
        plan["shards"] = _tokenize(build, source, tokenizer, workers=workers, shard_documents=shard_documents,
                                   on_shard=on_shard)  # fmt: skip
        _write_json(plan_path, plan)
    done = _done_shards(build, dtype, verify=False)
    shards = [done[index] for index in range(plan["shards"])]
    length = sum(shard["length"] for shard in shards)
    if length == 0:
        raise DataError(f"data.sources[{source.config.name}] holds no text: add documents or remove the source")
    sha256 = _concatenate(build, shards, dtype)
    meta = {
        "format": CACHE_FORMAT,
        "length": length,
        "dtype": dtype.name,
        "sha256": sha256,
        "documents": sum(shard["documents"] for shard in shards),
        "text_bytes": sum(shard["text_bytes"] for shard in shards),
        "source": source.config.name,
        "source_fingerprint": source.fingerprint,
        "tokenizer": tokenizer.name,
        "tokenizer_identity": tokenizer.identity,
    }
    (build / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    for path in [*build.glob("shard-*.json"), plan_path]:
        path.unlink()
    return meta


def cached_tokens(source: LoadedSource, tokenizer: Tokenizer, cache_dir: pathlib.Path, *, workers: int | None = None,
                  shard_documents: int = SHARD_DOCUMENTS, on_shard: Callable[[int], None] | None = None
                  ) -> CachedTokens:  # fmt: skip
    """The source's ids from the cache, tokenizing them first if no valid cache exists.

    `workers` processes tokenize (default: the usable cores); `on_shard(index)` is called after each shard this call
    tokenizes is on disk. A build that was killed resumes from its completed shards."""
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
                build = root / f".{key}{BUILD_SUFFIX}"
                try:
                    meta = _build(build, source, tokenizer, workers=workers or usable_cores(),
                                  shard_documents=shard_documents, on_shard=on_shard)  # fmt: skip
                except ScalingLabError:  # bad data: nothing to resume, nothing left behind
                    shutil.rmtree(build, ignore_errors=True)
                    raise
                os.replace(build, folder)
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
