"""Figures of a fit, drawn from the fit table and the result objects (never from torch, never via pyplot state).

Each ``*_figure`` function returns a matplotlib Figure; :func:`save` writes it as PNG and SVG.
Styles follow Hoffmann et al. 2022: isoFLOP profiles (Fig. 3), N_opt/D_opt against C (Fig. 1, A3),
L(N, D) contours with the efficient frontier (Fig. 4), and the loss-vs-compute envelope (Fig. 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from scaling_lab.budget import FlopsPerToken
from scaling_lab.fitting.approach2 import profile_curve
from scaling_lab.fitting.bootstrap import percentile_interval
from scaling_lab.fitting.laws import ChinchillaLaw
from scaling_lab.fitting.seeds import assign_budgets

FORMATS = ("png", "svg")
COLORS = {"approach1": "tab:green", "approach2": "tab:orange", "approach3": "tab:blue"}
DPI = 120
MIN_PROFILE_SIZES = 3
"""Budgets with fewer distinct sizes are not drawn as isoFLOP profiles (a parabola needs 3)."""
SAME_BUDGET_RTOL = 1e-9
"""A slice drawn here is approach 2's budget when their C agree to this relative tolerance: both are the geometric
mean of the same points' C (fitting.seeds.assign_budgets), equal up to float rounding."""


def save(figure: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write ``name.png`` and ``name.svg`` into out_dir; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = out_dir / f"{name}.{fmt}"
        figure.savefig(path, dpi=DPI)
        paths.append(path)
    return paths


def _budget_colors(budgets: np.ndarray) -> dict[float, Any]:
    cmap = colormaps["viridis"]
    return {b: cmap(i / max(1, len(budgets) - 1)) for i, b in enumerate(budgets)}


def isoflop_figure(points: pd.DataFrame, results: dict[str, Any], budget_rtol: float = 0.05) -> Figure:
    """Loss against N per isoFLOP budget, with approach 2's profile fits and minima and approach 3's curves."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.add_subplot()
    labels = assign_budgets(points["flops"].to_numpy(), budget_rtol)
    r2, r3 = results.get("approach2"), results.get("approach3")
    fitted = [b for b in (r2.budgets if r2 else []) if b.fitted]  # approach 2's own per-budget results
    budgets = np.unique(labels)
    colors = _budget_colors(budgets)
    for flops in budgets:
        rows = points[labels == flops]
        if rows["n_params"].nunique() < MIN_PROFILE_SIZES:
            continue
        color = colors[flops]
        ax.scatter(rows["n_params"], rows["loss"], s=12, color=color, label=f"C={flops:.2g}")
        grid = np.geomspace(rows["n_params"].min(), rows["n_params"].max(), 100)
        if r3 is not None:
            ax.plot(grid, r3.law.loss(grid, flops / r3.flops_per_token(grid)), "--", color=color, lw=1)
        budget = next((b for b in fitted if math.isclose(b.flops, flops, rel_tol=SAME_BUDGET_RTOL)), None)
        if r2 is not None and budget is not None:
            profile = profile_curve(np.log(rows["n_params"].to_numpy()), rows["loss"].to_numpy(), r2.curve)
            ax.plot(grid, profile(np.log(grid)), "-", color=color, lw=1)
            marker = "v" if budget.bracketed else "x"
            ax.plot([budget.n_opt], [budget.loss_opt], marker, color="black", ms=7)
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("loss")
    ax.set_title("IsoFLOP profiles (solid: approach 2 fit, dashed: approach 3; ▼ minimum)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncol=2)
    return figure


def _frontier_lines(results: dict[str, Any], flops: np.ndarray, which: str) -> dict[str, tuple]:
    """Per approach: (central line, band low, band high or None) of N_opt or D_opt over flops."""
    out: dict[str, tuple] = {}
    r3 = results.get("approach3")
    if r3 is not None:
        per_token = r3.flops_per_token
        pick: Callable[[ChinchillaLaw], np.ndarray] = (
            (lambda law: law.n_opt(flops, per_token)) if which == "n" else (lambda law: law.d_opt(flops, per_token))
        )
        band = None
        if r3.bootstrap_samples:
            lines = np.array([pick(ChinchillaLaw(**s)) for s in r3.bootstrap_samples])
            band = np.array([percentile_interval(col, r3.level) for col in lines.T]).T
        out["approach3"] = (pick(r3.law), band)
    for name in ("approach2", "approach1"):
        result = results.get(name)
        if result is None:
            continue
        key_exp, key_coef = ("a", "k_n") if which == "n" else ("b", "k_d")
        central = getattr(result, key_coef).value * flops ** getattr(result, key_exp).value
        band = None
        if result.bootstrap_samples:
            lines = np.array([s[key_coef] * flops ** s[key_exp] for s in result.bootstrap_samples])
            band = np.array([percentile_interval(col, result.a.level) for col in lines.T]).T
        out[name] = (central, band)
    return out


def frontier_figure(points: pd.DataFrame, results: dict[str, Any]) -> Figure:
    """N_opt(C) and D_opt(C) from every approach side by side, with bootstrap bands where available."""
    figure = Figure(figsize=(10, 4), layout="constrained")
    flops = np.geomspace(points["flops"].min(), points["flops"].max() * 100, 100)
    r2 = results.get("approach2")
    for index, which in enumerate(("n", "d")):
        ax = figure.add_subplot(1, 2, index + 1)
        for name, (central, band) in _frontier_lines(results, flops, which).items():
            result = results[name]
            exponent = (result.a if which == "n" else result.b).value
            ax.plot(flops, central, color=COLORS[name], label=f"{name} ({'a' if which == 'n' else 'b'}={exponent:.3f})")
            if band is not None:
                ax.fill_between(flops, band[0], band[1], color=COLORS[name], alpha=0.2)
        if r2 is not None:
            used = [b for b in r2.budgets if b.used]
            key = "n_opt" if which == "n" else "d_opt"
            ax.scatter([b.flops for b in used], [getattr(b, key) for b in used], color=COLORS["approach2"], s=15,
                       zorder=3)  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training FLOPs C")
        ax.set_ylabel("N_opt (parameters)" if which == "n" else "D_opt (tokens)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    levels = {results[name].a.level for name in COLORS if name in results} - {None}  # the bootstrap's level
    bands = f"{levels.pop():.0%} bootstrap" if len(levels) == 1 else "bootstrap"
    figure.suptitle(f"Compute-optimal allocation (bands: {bands})")
    return figure


def contour_figure(points: pd.DataFrame, law: ChinchillaLaw, per_token: FlopsPerToken) -> Figure:
    """L(N, D = C/f(N)) contours over (C, N) with the efficient frontier N_opt(C) (Hoffmann et al. 2022, Fig. 4);
    f is the table's FLOPs per token (the approach-3 result's ``flops_per_token``; SIX_ND for C = 6ND): required,
    because a frontier drawn along 6ND for a table of exact FLOPs is a different curve."""
    figure = Figure(figsize=(6, 4.5), layout="constrained")
    ax = figure.add_subplot()
    flops = np.geomspace(points["flops"].min() / 10, points["flops"].max() * 100, 200)
    sizes = np.geomspace(points["n_params"].min() / 10, points["n_params"].max() * 10, 200)
    grid_c, grid_n = np.meshgrid(flops, sizes)
    loss = law.loss(grid_n, grid_c / per_token(grid_n))
    levels = np.unique(np.quantile(loss, np.linspace(0.02, 0.9, 14)))  # the extreme corners would take every level
    contour = ax.contourf(grid_c, grid_n, loss, levels=levels, cmap="viridis_r", extend="both")
    figure.colorbar(contour, ax=ax, label="predicted loss")
    ax.plot(flops, law.n_opt(flops, per_token), color="tab:blue", lw=2, label="efficient frontier N_opt(C)")
    ax.scatter(points["flops"], points["n_params"], s=6, color="white", edgecolors="black", linewidths=0.3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(flops[0], flops[-1])
    ax.set_ylim(sizes[0], sizes[-1])
    ax.set_xlabel("training FLOPs C")
    ax.set_ylabel("parameters N")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title("Approach 3: L(N, D) over (C, N)")
    return figure


def residuals_figure(points: pd.DataFrame, law: ChinchillaLaw) -> Figure:
    """Approach 3's log-loss residuals against N, D and C."""
    figure = Figure(figsize=(11, 3.5), layout="constrained")
    residual = np.log(law.loss(points["n_params"].to_numpy(), points["n_tokens"].to_numpy())) - np.log(
        points["loss"].to_numpy()
    )
    for index, (column, label) in enumerate((("n_params", "N"), ("n_tokens", "D"), ("flops", "C"))):
        ax = figure.add_subplot(1, 3, index + 1)
        ax.scatter(points[column], residual, s=8)
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        if index == 0:
            ax.set_ylabel("log L_pred − log L")
    figure.suptitle("Approach 3 residuals")
    return figure


def envelope_figure(curves: pd.DataFrame | None, points: pd.DataFrame, results: dict[str, Any]) -> Figure:
    """Loss against compute: every run's curve (or the points), and approach 1's lower envelope."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.add_subplot()
    if curves is not None and len(curves):
        sizes = np.sort(curves["n_params"].unique())
        cmap = colormaps["plasma"]
        for _, rows in curves.groupby("run_id"):
            rows = rows.sort_values("flops")
            size_index = int(np.searchsorted(sizes, rows["n_params"].iloc[0]))
            color = cmap(size_index / max(1, len(sizes) - 1))
            ax.plot(rows["flops"], rows["loss"], color=color, lw=0.8, alpha=0.8)
    ax.scatter(points["flops"], points["loss"], s=8, color="gray", label="final points")
    r1 = results.get("approach1")
    if r1 is not None:
        env = pd.DataFrame([point.to_dict() for point in r1.envelope])
        ax.plot(env["flops"], env["loss"], color="black", lw=2, label="lower envelope (approach 1)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training FLOPs C")
    ax.set_ylabel("loss")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.set_title("Loss against compute")
    return figure


def all_figures(
    points: pd.DataFrame, curves: pd.DataFrame | None, results: dict[str, Any], out_dir: Path
) -> dict[str, list[Path]]:
    """Draw every figure the results allow and save each as PNG and SVG; returns name → paths."""
    figures: dict[str, Figure] = {
        "isoflop": isoflop_figure(points, results),
        "frontier": frontier_figure(points, results),
        "envelope": envelope_figure(curves, points, results),
    }
    r3 = results.get("approach3")
    if r3 is not None:
        figures["contours"] = contour_figure(points, r3.law, r3.flops_per_token)
        figures["residuals"] = residuals_figure(points, r3.law)
    return {name: save(figure, out_dir, name) for name, figure in figures.items()}
