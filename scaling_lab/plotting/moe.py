"""The MoE figure: loss against active parameters, one colour per expert count, one panel per token budget, with the
fitted unified law (Clark et al. 2022) drawn through each panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from scaling_lab.fitting.moe_law import MoELawFit

EXPERT_COLORS = ("black", "tab:blue", "tab:orange", "tab:red", "tab:purple")
"""Dense first, then increasing expert counts."""


def moe_figure(points: dict[float, pd.DataFrame], laws: dict[float, MoELawFit]) -> Figure:
    """``points``: D → the law's fit table at D (n_params = active N, n_experts, loss); ``laws``: D → its fit."""
    budgets = sorted(points)
    figure = Figure(figsize=(5 * len(budgets), 4.2), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(budgets), sharey=True))
    for ax, budget in zip(axes, budgets, strict=True):
        table = points[budget]
        sizes = np.geomspace(table["n_params"].min() / 1.2, table["n_params"].max() * 1.2, 100)
        for color, (experts, rows) in zip(EXPERT_COLORS, table.groupby("n_experts"), strict=False):
            label = "dense" if experts == 1 else f"{int(experts)} experts"
            ax.scatter(rows["n_params"], rows["loss"], color=color, label=label, zorder=3)
            if budget in laws:
                ax.plot(sizes, laws[budget].loss(sizes, np.full_like(sizes, experts)), color=color, alpha=0.7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("active parameters N")
        ax.set_title(f"D = {budget:.3g} tokens")
    axes[0].set_ylabel("eval loss (nats/token)")
    axes[0].legend()
    return figure
