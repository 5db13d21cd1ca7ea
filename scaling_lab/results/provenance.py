"""Where a run came from: config hash, library versions, git commit, timestamps. Never imports torch."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from scaling_lab.redact import scrub_secrets

VERSIONED_LIBRARIES = ("torch", "transformers", "datasets", "scaling_lab")
"""Distributions whose versions every record carries (with python)."""

# Sections and fields of a run config that do not change what a run computes: where it writes and logs, how many
# CPU threads or processes, whether it compiles (same maths), debug switches, and the device. The run_id derives
# from the rest, so a relaunch anywhere finds the same run; a record's config_hash leaves them out too, so a store
# that was moved (paths) or a record read on another machine still checks out.
UNHASHED = ("paths", "logger", "debug", "threads", "jobs_per_device", "compile", "device", "sweep", "grid",
            "retry_failed", "fsdp_min_params", "processes")  # fmt: skip


def utc_now() -> str:
    """The current time as ISO-8601 in UTC, to the second: the format of created_at / finished_at."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def library_versions() -> dict[str, str]:
    """Versions of python and VERSIONED_LIBRARIES, read from package metadata (nothing is imported)."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(path: str | Path | None = None) -> str | None:
    """HEAD commit of the git checkout holding ``path`` (default: this package), "+dirty" appended when the
    tracked files differ from it; None outside a checkout or without git."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit


def config_hash(config: Mapping[str, Any], *, ignore: Iterable[str] = ()) -> str:
    """SHA-256 (hex, first 16 characters) of the config as canonical JSON, credentials redacted first.

    Redacted by the config alone (credential keys and shapes, the values under credential keys), never by the
    process's environment or command line: the same config hashes the same in every process (a launcher's worker
    has another command line) and a rotated token does not rename a run.

    ``ignore`` names top-level sections left out of the hash (e.g. ``("logger", "paths")``: where a run logs
    or writes does not change what it computes). Key order does not matter; every value does.
    """
    skipped = set(ignore)
    kept = {key: value for key, value in config.items() if key not in skipped}
    canonical = json.dumps(scrub_secrets(kept, frozenset()), sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def run_config_hash(config: Mapping[str, Any]) -> str:
    """:func:`config_hash` of a run's config without the sections in :data:`UNHASHED`: the hash a run_id ends with
    (of the config as given) and a record's ``config_hash`` (of the config as stored, rule-derived values filled in).
    """
    return config_hash(config, ignore=UNHASHED)
