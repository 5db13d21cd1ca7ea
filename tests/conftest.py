"""Tiny real runs for the trainer and sweep tests: a ~1k-parameter model on the embedded corpus, on the CPU, in
seconds (``tiny_config``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scaling_lab.config.schema import RunConfig, run_config_from_dict

TINY: dict[str, Any] = {
    "model": {"preset": "n1k"},
    "data": {
        "name": "embedded",
        "sources": [
            {"name": "prose", "kind": "embedded", "domain": "prose", "weight": 0.5},
            {"name": "code", "kind": "embedded", "domain": "code", "weight": 0.5},
        ],
        "sequence_length": 32,
        "eval_bytes": 2048,
    },
    "optim": {"lr": 0.02, "batch_tokens": 256},
    "schedule": {"kind": "cosine"},
    "budget": {"kind": "tokens", "value": 10_240},  # 40 steps of 8 sequences × 32 tokens
    "logger": {"backend": "none"},
    "debug": {"progress": False},
    "threads": 1,
    "device": "cpu",
}


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Nested dict update (sections merge, values replace)."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture(scope="session")
def data_cache() -> Path:
    """The machine's shared data cache (paths.cache_dir=null in a real run): the embedded corpus and its byte
    tokens are built there once (~20 s) and reused by every later session; results still go to tmp_path."""
    from scaling_lab.data import default_cache_dir

    return default_cache_dir()


@pytest.fixture
def tiny_config(tmp_path: Path, data_cache: Path) -> Callable[..., RunConfig]:
    """Build a validated tiny RunConfig; keyword sections override TINY (results go under tmp_path)."""

    def make(results: Path | None = None, **changes: Any) -> RunConfig:
        paths = {"results_dir": str(results or tmp_path / "results"), "cache_dir": str(data_cache)}
        return run_config_from_dict(merge(TINY, {"paths": paths, **changes}))

    return make
