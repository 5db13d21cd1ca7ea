"""Can an output go where the user asked? Checked before any work, so a bad path costs nothing and leaves nothing.

Every entry point checks the folders and files it will write (the results store, the data cache, a fit's folder, a
collected table, a plan's CSV) with these two functions before it trains, tokenizes or fits anything. A path fails
when something that must be a folder is a file (or the reverse), when a name is longer than the file system allows,
or when nothing can be created where it would go. The last is *probed*: a temporary folder is made and removed in
the nearest existing ancestor, because permission bits do not answer it (root may write anywhere the mount allows,
yet not under /proc, /sys or a read-only mount). Nothing is created for the caller: a failed start leaves no empty
folders behind; the writer makes them when it writes.

Standard library only, like :mod:`scaling_lab.atomic`, so every layer can use it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from scaling_lab.errors import ConfigError

NAME_MAX_FALLBACK = 255  # POSIX file systems' usual limit on one path component, in bytes, where pathconf says nothing


def check_output_folder(path: str | os.PathLike[str], field: str) -> None:
    """Raise ConfigError naming ``field`` unless ``path`` is a folder this process can write in, or can create."""
    folder, label = Path(path), f"{field}={path}"
    if _exists(folder) and not folder.is_dir():
        raise ConfigError(f"{label} is a file, not a folder: choose a folder path (or move the file away)")
    _check_can_create(folder, label)


def check_output_file(path: str | os.PathLike[str], field: str) -> None:
    """Raise ConfigError naming ``field`` unless a file can be written at ``path`` (its folder may not exist yet)."""
    file, label = Path(path), f"{field}={path}"
    if file.is_dir():
        raise ConfigError(f"{label} is a folder, not a file: name a file, e.g. {file / 'out.csv'}")
    _check_can_create(file.parent, label)


def _exists(path: Path) -> bool:
    """True for anything at ``path``, a dangling symbolic link included (it blocks a folder of that name too)."""
    try:
        path.lstat()
    except OSError:
        return False
    return True


def _check_can_create(folder: Path, label: str) -> None:
    """``folder`` exists and is writable, or its nearest existing ancestor is a folder in which it can be created."""
    folder = Path(os.path.abspath(folder))
    ancestor = next(p for p in (folder, *folder.parents) if _exists(p))
    if not ancestor.is_dir():
        raise ConfigError(f"{label}: {ancestor} is a file, so no folder can be created inside it: choose another path")
    try:
        name_max = os.pathconf(ancestor, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = NAME_MAX_FALLBACK
    missing = folder.relative_to(ancestor).parts
    too_long = [name for name in missing if len(os.fsencode(name)) > name_max]
    if too_long:
        raise ConfigError(f"{label}: the name {too_long[0][:40]}... is longer than the {name_max} bytes the file system"
                          " allows: choose a shorter path")  # fmt: skip
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".scaling_lab-write-probe-", dir=ancestor))
    except OSError as error:
        raise ConfigError(f"{label}: nothing can be written in {ancestor} ({error.strerror}): choose a folder you can"
                          " write to") from error  # fmt: skip
