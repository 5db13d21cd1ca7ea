"""Synthetic fit tables drawn from a known law: for recovery tests, benchmarks and examples.

The grid is an isoFLOP design as in Hoffmann et al. 2022 §3.2: for each budget C, model sizes spaced
evenly in log N around the law's N_opt(C), with D = C / (6 N) — or C / f(N) for a FLOPs-per-token function f
(scaling_lab.budget.FlopsPerToken), as a sweep budgeted in exact FLOPs has. Noise is multiplicative (log-normal)
on the loss.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scaling_lab.budget import SIX_ND, FlopsPerToken
from scaling_lab.fitting.laws import ChinchillaLaw


def isoflop_table(
    law: ChinchillaLaw,
    *,
    budgets: np.ndarray,
    sizes_per_budget: int = 9,
    span_decades: float = 1.0,
    noise: float = 0.0,
    seed: int = 0,
    offset_decades: float | np.ndarray = 0.0,
    seeds: int = 1,
    per_token: FlopsPerToken = SIX_ND,
) -> pd.DataFrame:
    """A fit table: per budget, ``sizes_per_budget`` sizes from N_opt/10^span to N_opt·10^span.

    ``noise`` is the standard deviation of log loss (0.01 ≈ 1 % multiplicative noise), drawn independently for
    each of ``seeds`` rows per point (with several, column ``seed``: 0, 1, ...). ``offset_decades`` (one value,
    or one per budget) moves a slice's sizes off the optimum, centring them on N_opt·10^offset, as a grid planned
    from a wrong guess of the optimum is.
    Each row is its own run (run_id ``r<i>``, or ``r<i>s<seed>`` with several seeds).
    """
    rng = np.random.default_rng(seed)
    rows = []
    budgets = np.asarray(budgets, dtype=float)
    for flops, offset in zip(budgets, np.broadcast_to(offset_decades, budgets.shape), strict=True):
        centre = np.log10(law.n_opt(flops, per_token)) + offset
        for log_n in np.linspace(centre - span_decades, centre + span_decades, sizes_per_budget):
            n = 10.0**log_n
            rows.append((n, flops / float(per_token(n)), flops))
    design = pd.DataFrame(rows, columns=["n_params", "n_tokens", "flops"])
    table = pd.concat([design.assign(seed=k) for k in range(seeds)], ignore_index=True)
    clean = law.loss(table["n_params"].to_numpy(), table["n_tokens"].to_numpy())
    table["loss"] = clean * np.exp(noise * rng.standard_normal(len(table)))
    table["group"] = ""
    point = np.tile(np.arange(len(design)), seeds)
    table["run_id"] = [f"r{i}" if seeds == 1 else f"r{i}s{k}" for i, k in zip(point, table["seed"], strict=True)]
    columns = ["n_params", "n_tokens", "flops", "loss", "group", "run_id"]
    return table[[*columns, "seed"]] if seeds > 1 else table[columns]


def curves_table(
    law: ChinchillaLaw,
    *,
    sizes: np.ndarray,
    max_tokens_per_param: float = 100.0,
    points_per_curve: int = 40,
    noise: float = 0.0,
    seed: int = 0,
    per_token: FlopsPerToken = SIX_ND,
) -> pd.DataFrame:
    """Loss curves: for each size N, points at D from N to max_tokens_per_param·N (log-spaced), one run per size.

    The curve is taken to follow L(N, D) (as for a run whose schedule ends at each D, Hoffmann et al. 2022 §3.1
    approximates this with cosine runs of several lengths).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i, n in enumerate(np.asarray(sizes, dtype=float)):
        for d in np.geomspace(n, max_tokens_per_param * n, points_per_curve):
            rows.append((n, d, float(per_token.flops(n, d)), f"size{i}"))
    table = pd.DataFrame(rows, columns=["n_params", "n_tokens", "flops", "run_id"])
    clean = law.loss(table["n_params"].to_numpy(), table["n_tokens"].to_numpy())
    table["loss"] = clean * np.exp(noise * rng.standard_normal(len(table)))
    table["group"] = ""
    return table
