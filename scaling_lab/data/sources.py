"""Sources of text: the embedded corpus, local files and Hugging Face hub datasets, all read with `datasets`.

A loaded source is a `fingerprint` (a hash of its bytes for local data, of its pinned identity for a
hub dataset) and a way to iterate its documents in a fixed order.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import json
import os
import pathlib
import socket
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from scaling_lab.data.config import SourceConfig
from scaling_lab.data.files import one_line
from scaling_lab.errors import ConfigError, DataError

BATCH_DOCUMENTS = 512  # documents per tokenizer batch
FORMAT_BY_SUFFIX = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}  # anything else: text
HUB_PROBE_TIMEOUT_S = 5.0  # one TCP connect to the hub endpoint before loading
HUB_TIMEOUT_S = "20"  # huggingface_hub's etag / download timeouts, so an unreachable hub fails instead of hanging


@dataclass(frozen=True, kw_only=True)
class LoadedSource:
    """A source ready to be tokenized."""

    config: SourceConfig
    """The source's config."""
    fingerprint: str
    """Hex sha256 identifying the source's content: file bytes, or for a hub dataset its id, subset, split,
    revision and limits (pin `revision` so that the hub content cannot move under the same fingerprint)."""
    dataset: object
    """A `datasets.Dataset` (or `IterableDataset` when streaming) with the text column."""
    text_field: str
    """The column holding the text."""

    @functools.cached_property
    def _order(self) -> np.ndarray | None:
        """Row order of a map-style dataset (a fixed shuffle, capped), None for a stream (read in its own order)."""
        if not hasattr(self.dataset, "select"):
            return None
        order = np.random.default_rng(0).permutation(len(self.dataset))
        return order if self.config.max_documents is None else order[: self.config.max_documents]

    def document_count(self) -> int | None:
        """Documents :meth:`documents` yields in all (empty ones included), None for a stream (known at its end)."""
        return None if self._order is None else len(self._order)

    def documents(self, batch_size: int = BATCH_DOCUMENTS, *, start: int = 0, stop: int | None = None
                  ) -> Iterator[list[str]]:  # fmt: skip
        """Batches of documents [start, stop) in the source's fixed order (shuffled once, seed 0, for local data),
        empty documents dropped.

        The order is shuffled with a fixed seed so that the held-out tail of each source is a random
        sample of its documents rather than, say, the last folder alphabetically. A range lets the token cache
        tokenize shards of a source in parallel and resume a stream after its completed shards.
        """
        dataset = self.dataset
        if self._order is not None:  # a map-style Dataset: fixed shuffle, then cap
            dataset = dataset.select(self._order[start:stop])
        else:
            if self.config.max_documents is not None:
                dataset = dataset.take(self.config.max_documents)
            if start:
                dataset = dataset.skip(start)
            if stop is not None:
                dataset = dataset.take(stop - start)
        for batch in dataset.iter(batch_size=batch_size):
            yield [text for text in batch[self.text_field] if text]


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Hide `datasets`' per-file progress bars while loading (restored afterwards)."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def _where(source: SourceConfig) -> str:
    return f"data.sources[{source.name}]"


def resolve_paths(source: SourceConfig) -> list[pathlib.Path]:
    """Files named by `source.paths` (files, folders read recursively, globs), sorted, each checked non-empty."""
    files: set[pathlib.Path] = set()
    for entry in source.paths:
        expanded = os.path.expanduser(entry)
        matches = glob.glob(expanded, recursive=True) if glob.has_magic(expanded) else [expanded]
        found = False
        for match in map(pathlib.Path, matches):
            if match.is_dir():
                inside = [p for p in match.rglob("*") if p.is_file() and not p.name.startswith(".")]
                files.update(inside)
                found = found or bool(inside)
            elif match.is_file():
                files.add(match)
                found = True
        if not found:
            raise DataError(
                f"{_where(source)}.paths: {entry!r} matches no file (working directory {os.getcwd()}): fix the path "
                "or glob"
            )
    ordered = sorted(files)
    for path in ordered:
        if path.stat().st_size == 0:
            raise DataError(f"{_where(source)}.paths: {path} is empty: remove it or add text")
    return ordered


def file_format(source: SourceConfig, files: list[pathlib.Path]) -> str:
    """The `datasets` builder for the files: the configured format, or one inferred from the extensions."""
    if source.format != "auto":
        return source.format
    formats = {FORMAT_BY_SUFFIX.get(path.suffix.lower(), "text") for path in files}
    if len(formats) > 1:
        raise ConfigError(
            f"{_where(source)}.paths mix formats {sorted(formats)}: split them into one source per format or set "
            f"{_where(source)}.format"
        )
    return formats.pop()


def fingerprint_files(files: list[pathlib.Path], extra: str) -> str:
    """sha256 over every file's bytes in order (names excluded, so a moved folder keeps its cache) and `extra`."""
    digest = hashlib.sha256(extra.encode())
    for path in files:
        digest.update(f"|{path.stat().st_size}|".encode())
        with open(path, "rb") as handle:
            for block in iter(lambda handle=handle: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _load_local(source: SourceConfig, files: list[pathlib.Path], builder: str, cache_dir: pathlib.Path):
    import datasets

    options = {"sample_by": "document"} if builder == "text" else {}
    try:
        with _quiet_datasets():
            dataset = datasets.load_dataset(
                builder,
                data_files=[str(path) for path in files],
                split="train",
                cache_dir=str(pathlib.Path(cache_dir) / "hf_datasets"),
                **options,
            )
    except Exception as error:  # any parse failure is a bad file
        raise DataError(
            f"{_where(source)}: could not read {len(files)} {builder} file(s) starting {files[0]} "
            f"({one_line(error)}): check the files or set {_where(source)}.format"
        ) from None
    text_field = "text" if builder == "text" else source.text_field
    if text_field not in dataset.column_names:
        raise DataError(
            f"{_where(source)}.text_field={text_field!r} is not a column of {files[0]} (columns: "
            f"{dataset.column_names}): set text_field to the text column"
        )
    if len(dataset) == 0:
        raise DataError(f"{_where(source)}: {files[0]} holds no documents: add text")
    return dataset, text_field


def check_hub_reachable(what: str) -> None:
    """Fail in seconds, with one line, when the hub cannot be reached (huggingface_hub would retry for ~30 s).

    Skipped under HF_HUB_OFFLINE=1, where `datasets` reads its local cache only.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return
    endpoint = urllib.parse.urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname, port), timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError as error:
        raise DataError(
            f"{what} needs {endpoint.hostname}:{port}, which is unreachable ({error}): connect to the network, or set "
            "HF_HUB_OFFLINE=1 to use a cached copy, or use local files"
        ) from None


def _load_hub(source: SourceConfig):
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", HUB_TIMEOUT_S)
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", HUB_TIMEOUT_S)
    if not pathlib.Path(source.dataset).is_dir():  # a local dataset folder needs no network
        check_hub_reachable(f"{_where(source)}: hub dataset {source.dataset!r}")
    import datasets

    try:
        with _quiet_datasets():  # the default HF cache (HF_HOME / HF_DATASETS_CACHE), so existing downloads count
            dataset = datasets.load_dataset(
                source.dataset, source.subset, split=source.split, revision=source.revision, streaming=source.streaming
            )
    except Exception as error:  # not found, offline, gated, bad split: all unusable
        raise DataError(
            f"{_where(source)}: hub dataset {source.dataset!r} (subset {source.subset!r}, split {source.split!r}) "
            f"could not be loaded ({one_line(error)}): check the name, split and network, or use "
            "kind=files on a local copy"
        ) from None
    columns = dataset.column_names
    if columns is not None and source.text_field not in columns:
        raise DataError(
            f"{_where(source)}.text_field={source.text_field!r} is not a column of {source.dataset!r} "
            f"(columns: {columns}): set text_field"
        )
    return dataset


def load_source(source: SourceConfig, cache_dir: pathlib.Path) -> LoadedSource:
    """Read a source's documents through `datasets`, or end with one DataError line naming what to fix."""
    if source.kind == "hub":
        dataset = _load_hub(source)
        identity = {
            key: getattr(source, key)
            for key in ("dataset", "subset", "split", "revision", "text_field", "max_documents", "streaming")
        }
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        return LoadedSource(config=source, fingerprint=digest, dataset=dataset, text_field=source.text_field)
    if source.kind == "embedded":
        from scaling_lab.data.corpus import domain_file

        files = [domain_file(cache_dir, source.domain)]
        builder, field_name = "json", "text"
    else:
        files = resolve_paths(source)
        builder, field_name = file_format(source, files), source.text_field
    extra = json.dumps({"builder": builder, "text_field": field_name, "max_documents": source.max_documents})
    fingerprint = fingerprint_files(files, extra)
    dataset, text_field = _load_local(
        SourceConfig(**{**source.__dict__, "text_field": field_name}), files, builder, cache_dir
    )
    return LoadedSource(config=source, fingerprint=fingerprint, dataset=dataset, text_field=text_field)
