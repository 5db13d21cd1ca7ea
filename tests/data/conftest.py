"""Fixtures for the data tests: small real text files in tmp_path (no 10 MB corpus needed)."""

from __future__ import annotations

import inspect
import json
import pathlib
import textwrap

import pytest
import torch

torch.set_num_threads(1)


def real_lines() -> list[str]:
    """Real English prose and Python code: docstrings and source of stdlib modules present on every machine."""
    import argparse
    import collections
    import json as json_module
    import pathlib as pathlib_module

    lines: list[str] = []
    for module in (argparse, collections, json_module, pathlib_module):
        lines += [line for line in inspect.getsource(module).splitlines() if line.strip()]
    return [piece for line in lines for piece in textwrap.wrap(line, 40)]


def write_documents(folder: pathlib.Path, n_documents: int, lines_per_document: int, tag: str = "") -> pathlib.Path:
    """Write text files whose every line starts with a unique marker, so that any 65-byte window is unique."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = real_lines()
    for d in range(n_documents):
        body = [
            f"[{tag}{d:03d}.{j:03d}] {lines[(d * lines_per_document + j) % len(lines)]}"
            for j in range(lines_per_document)
        ]
        (folder / f"doc{d:03d}.txt").write_text("\n".join(body) + "\n")
    return folder


@pytest.fixture
def make_documents():
    """The write_documents function, for tests that need several folders."""
    return write_documents


@pytest.fixture
def text_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """~120 kB of real text in 40 files, every line uniquely marked."""
    return write_documents(tmp_path / "texts", n_documents=40, lines_per_document=60)


@pytest.fixture
def jsonl_file(tmp_path: pathlib.Path) -> pathlib.Path:
    """~60 kB of real text as JSON lines with a 'body' field."""
    path = tmp_path / "docs.jsonl"
    lines = real_lines()
    with open(path, "w") as handle:
        for d in range(30):
            handle.write(json.dumps({"body": "\n".join(f"<j{d}.{j}> {lines[d * 40 + j]}" for j in range(40))}) + "\n")
    return path
