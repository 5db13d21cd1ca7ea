"""Atomic file writes: a reader sees the old file or the whole new one, never a part.

One mechanism for every output a reader may trust (run records, checkpoints, fit.json and report, collected tables):
write to a temporary file in the target's folder, fsync it, then ``os.replace`` it onto the target (atomic on POSIX
and Windows). Standard library only, so the torch-free packages (results, fitting) can use it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write through any library; on success it replaces ``path``.

    The file is fsynced before the rename; on any error the temporary file is removed and ``path`` is untouched.
    Permissions are set to 0644: ``mkstemp`` creates 0600, and colleagues sharing a results folder must read it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temp = Path(name)
    try:
        yield temp
        with open(temp, "rb+") as written:  # whatever wrote it (json, torch, pyarrow) reaches the disk first
            os.fsync(written.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    """Write UTF-8 text to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as temp:
        temp.write_text(text, encoding="utf-8")


@contextmanager
def text_written_for(path: Path, text: str, undo_on: type[BaseException] = BaseException) -> Iterator[None]:
    """Write UTF-8 text to ``path`` for the block's use; if the block raises ``undo_on``, undo the write: the file's
    old bytes back, or, where there was no file, no file and none of the folders this write created (a failed start
    leaves nothing behind)."""
    path = Path(path)
    previous = path.read_bytes() if path.is_file() else None
    created = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]  # deepest first
    write_text_atomically(path, text)
    try:
        yield
    except undo_on:
        if previous is not None:
            with atomic_path(path) as temp:
                temp.write_bytes(previous)
        else:
            path.unlink(missing_ok=True)
            for folder in created:
                try:
                    folder.rmdir()
                except OSError:  # something else was written there meanwhile: not ours to remove
                    break
        raise
