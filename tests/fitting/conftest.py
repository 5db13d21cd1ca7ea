"""Shared builders for the fitter tests: synthetic tables from known laws and real results stores."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaling_lab.fitting.laws import CHINCHILLA_APPROACH3, ChinchillaLaw
from scaling_lab.fitting.synthetic import isoflop_table

os.environ.setdefault("OMP_NUM_THREADS", "1")

# A realistic Chinchilla-style grid (Hoffmann et al. 2022 §3.2): 6 isoFLOP budgets from 1e18 to 1e21 FLOPs,
# 9 sizes per budget spanning N_opt/10 .. N_opt·10.
BUDGETS = np.geomspace(1e18, 1e21, 6)


@pytest.fixture
def chinchilla_table() -> Callable[..., pd.DataFrame]:
    def make(noise: float = 0.0, seed: int = 0, law: ChinchillaLaw = CHINCHILLA_APPROACH3, **kwargs) -> pd.DataFrame:
        return isoflop_table(law, budgets=kwargs.pop("budgets", BUDGETS), noise=noise, seed=seed, **kwargs)

    return make


@pytest.fixture
def parabolic_table() -> Callable[..., pd.DataFrame]:
    def make(seed: int, *, a: float = 0.5, noise: float = 0.01) -> pd.DataFrame:
        """A small isoFLOP design (3 budgets a half-decade apart, 5 sizes per slice spanning ±0.6 decades) on
        profiles that ARE parabolas in log N with minimum at N_opt = 0.05·C^a, so approach 2 has no model bias."""
        rng = np.random.default_rng(seed)
        rows = []
        for flops in np.geomspace(1e11, 1e12, 3):
            n_opt = 0.05 * flops**a
            for n in n_opt * np.geomspace(10**-0.6, 10**0.6, 5):
                loss = 3.0 * (flops / 1e11) ** -0.1 + 0.2 * np.log(n / n_opt) ** 2 + rng.normal(0.0, noise)
                rows.append({"n_params": n, "n_tokens": flops / (6 * n), "flops": flops, "loss": loss})
        return pd.DataFrame(rows)

    return make


SET_FACTORS = {"prose": 0.9, "code": 1.1, "all": 1.0}
"""With ``suite``, each eval set's loss is the row's loss times these; its bits per byte are 1.5 times its loss."""


def write_store(
    root: Path,
    table: pd.DataFrame,
    *,
    sweep: str = "syn",
    data_mix: str = "bytes",
    suite: str | None = None,
    data: dict | None = None,
    set_factors: dict | None = None,
) -> Path:
    """Write one real finished RunRecord per row of a fit table into a results store under root; with ``suite`` (an
    eval-suite hash) every point also scores the sets of ``set_factors`` (default :data:`SET_FACTORS`)."""
    from scaling_lab.results import CurvePoint, RunPoint, RunRecord, config_hash, library_versions, utc_now
    from scaling_lab.results.store import write_record

    for i, row in enumerate(table.itertuples(index=False)):
        n, d, loss = int(row.n_params), int(row.n_tokens), float(row.loss)
        factors = SET_FACTORS if set_factors is None else set_factors
        losses = {name: loss * factor for name, factor in factors.items()} if suite else {}
        per_set = {"losses": losses, "bpb": {name: 1.5 * value for name, value in losses.items()}}
        config = {"model": {"n_params": n}, "budget": {"n_tokens": d}, **({"data": data} if data else {})}
        curve_tokens = [d // 4, d // 2, d]
        record = RunRecord(
            run_id=f"run{i}",
            sweep=sweep,
            status="finished",
            config=config,
            config_hash=config_hash(config),
            seed=0,
            data_mix=data_mix,
            data_mix_hash="h",
            n_params_total=n,
            n_params_nonembed=int(n * 0.8),
            tied_embeddings=True,
            n_tokens_planned=d,
            n_tokens=d,
            points=[
                RunPoint(
                    n_tokens=d, loss=loss, flops_6nd=6.0 * n * d, flops_exact=7.0 * n * d, train_loss=loss, **per_set
                )
            ],
            eval_suite_hash=suite,
            curve=[
                # earlier evaluations of the same run: higher loss, reaching the final loss at D
                CurvePoint(
                    n_tokens=t,
                    flops_6nd=6.0 * n * t,
                    flops_exact=7.0 * n * t,
                    loss=loss + 0.5 * (1 - t / d),
                    train_loss=loss,
                    losses={name: value + 0.5 * (1 - t / d) for name, value in losses.items()},
                    bpb={name: 1.5 * (value + 0.5 * (1 - t / d)) for name, value in losses.items()},
                )
                for t in curve_tokens
            ],
            tokens_per_second=1.0,
            flops_per_second=1.0,
            device="cpu",
            versions=library_versions(),
            wall_time_s=1.0,
            created_at="2026-11-22T07:40:00+00:00",
            finished_at=utc_now(),
        )
        write_record(record, root)
    return root
