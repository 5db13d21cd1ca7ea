"""The verification figure: each approach's prediction at the target budget against the slice trained there."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from scaling_lab.fitting.approach2 import profile_curve
from scaling_lab.fitting.verify import Measured, Prediction
from scaling_lab.plotting.figures import COLORS


def verify_figure(
    predictions: dict[str, Prediction],
    measured: Measured,
    runs: pd.DataFrame,
    *,
    flops: float,
    profile: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None,
) -> Figure:
    """Loss against N at the target budget C.

    Approach 3: its predicted isoFLOP profile (dashed) with the bootstrap band; approaches 1 and 2: their N_opt
    (vertical line) with the interval shaded. Every approach's predicted best loss is a marker at its N_opt.
    Measured: each run (small grey dots), the seed means (black), the profile through them and its minimum (star).
    ``profile`` is (sizes, approach 3's losses, band or None).
    """
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.add_subplot()
    if profile is not None:
        sizes, centre, band = profile
        ax.plot(sizes, centre, "--", color=COLORS["approach3"], lw=1.2, label="approach3 profile")
        if band is not None:
            ax.fill_between(sizes, band[0], band[1], color=COLORS["approach3"], alpha=0.15)
    for name, p in predictions.items():
        color = COLORS[name]
        ax.axvline(p.n_opt.value, color=color, lw=1, label=f"{name} N_opt {p.n_opt.value:.3g}")
        if p.n_opt.interval is not None:
            ax.axvspan(*p.n_opt.interval, color=color, alpha=0.08)
        if p.loss is not None:
            ax.plot([p.n_opt.value], [p.loss.value], "o", mfc="white", mec=color, ms=7)
    ax.scatter(runs["n_params"], runs["loss"], s=10, color="gray", zorder=3, label="runs")
    means = pd.DataFrame(measured.sizes)
    ax.errorbar(means["n_params"], means["loss_mean"], yerr=means["loss_std"], fmt="s", color="black", ms=5,
                capsize=3, zorder=4, label="seed means")  # fmt: skip
    if measured.curve is not None:
        log_n = np.log(means["n_params"].to_numpy())
        profile = profile_curve(log_n, means["loss_mean"].to_numpy(), measured.curve)
        grid = np.linspace(log_n.min(), log_n.max(), 100)
        ax.plot(np.exp(grid), profile(grid), color="black", lw=1, label=f"measured {measured.curve}")
    if measured.n_opt is not None:
        ax.plot([measured.n_opt], [measured.best_loss], "*", color="black", ms=12, zorder=5,
                label=f"measured N_opt {measured.n_opt:.3g}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("loss")
    ax.set_title(f"Prediction against measurement at C = {flops:.3g} (bands: bootstrap intervals)", fontsize=10)
    ax.legend(fontsize=7)
    return figure
