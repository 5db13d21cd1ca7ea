"""A valid record factory for the results tests: real RunRecords, varied one field at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from scaling_lab.results import CurvePoint, RunPoint, RunRecord, config_hash, library_versions, utc_now

N_TOTAL, N_NONEMBED = 120_000, 100_000


def _flops(n_tokens: int) -> tuple[float, float]:
    return 6.0 * N_TOTAL * n_tokens, 7.0 * N_TOTAL * n_tokens


def record_fields(**overrides: Any) -> dict[str, Any]:
    """The constructor arguments of a finished single-point run, with ``overrides`` applied."""
    config = {"model": {"width": 64}, "optim": {"lr": 3e-3, "batch_tokens": 8192}, "schedule": {"kind": "cosine"}}
    fields: dict[str, Any] = {
        "run_id": "w64_d1e4",
        "sweep": "tiny",
        "status": "finished",
        "config": config,
        "seed": 0,
        "data_mix": "bytes",
        "data_mix_hash": "abc123",
        "n_params_total": N_TOTAL,
        "n_params_nonembed": N_NONEMBED,
        "tied_embeddings": True,
        "n_tokens_planned": 10_000,
        "n_tokens": 10_240,
        "points": [
            RunPoint(
                n_tokens=10_240, loss=3.1, flops_6nd=_flops(10_240)[0], flops_exact=_flops(10_240)[1], train_loss=3.0
            )
        ],
        "curve": [
            CurvePoint(n_tokens=n, flops_6nd=_flops(n)[0], flops_exact=_flops(n)[1], loss=loss, train_loss=loss - 0.1)
            for n, loss in ((2048, 4.5), (6144, 3.6), (10_240, 3.1))
        ],
        "tokens_per_second": 5000.0,
        "flops_per_second": 5000.0 * 7.0 * N_TOTAL,
        "mfu": None,
        "wall_time_s": 2.05,
        "device": "cpu",
        "versions": library_versions(),
        "git_commit": None,
        "created_at": "2026-11-22T07:40:00+00:00",
        "finished_at": utc_now(),
    }
    fields.update(overrides)
    if "config_hash" not in overrides:  # the store recomputes it from the config on reading
        fields["config_hash"] = config_hash(fields["config"])
    return fields


def wsd_fields(**overrides: Any) -> dict[str, Any]:
    """A finished warmup–stable–decay run with three cooldown points."""
    tokens = (4096, 8192, 16_384)
    points = [
        RunPoint(n_tokens=n, loss=loss, flops_6nd=_flops(n)[0], flops_exact=_flops(n)[1], train_loss=loss)
        for n, loss in zip(tokens, (3.4, 3.2, 3.05), strict=True)
    ]
    base = {
        "run_id": "w64_wsd",
        "n_tokens_planned": 16_384,
        "n_tokens": 16_384,
        "points": points,
        "config": {"optim": {"lr": 1e-3}, "schedule": {"kind": "wsd"}},
    }
    return record_fields(**{**base, **overrides})


@pytest.fixture
def make_record() -> Callable[..., RunRecord]:
    return lambda **overrides: RunRecord(**record_fields(**overrides))


@pytest.fixture
def make_wsd_record() -> Callable[..., RunRecord]:
    return lambda **overrides: RunRecord(**wsd_fields(**overrides))
