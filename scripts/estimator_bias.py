"""Bias of the estimators of a (N_opt ∝ C^a) on synthetic isoFLOP grids with α ≠ β and off-centre sizes.

    python scripts/estimator_bias.py [--seeds 20] [--noise 0.005] [--offset 0.3] [--span 0.75] [--sizes 7]

Each surface L = E + A/N^α + B/D^β is sampled as an isoFLOP grid (synthetic.isoflop_table): 6 budgets from 1e18
to 1e21 FLOPs, ``--sizes`` sizes per budget over ±``--span`` decades around a centre that misses N_opt, in two
designs (Czech et al. 2026 study both): every slice centred ``--offset`` decades above N_opt, and centres drifting
from ``+offset`` at the smallest budget to ``−offset`` at the largest (a grid planned with too small an a, or the
same sizes reused at every budget). Each table is drawn once without noise (the estimators' systematic error
alone) and ``--seeds`` times with log-normal noise of ``--noise`` on the loss. Every estimator fits every table:
approach 2 with parabola, cubic and Akima profiles (Akima's seed-noise model is told the true noise: std = noise ×
loss), approach 3 by its multi-start fit (Huber on log loss) and by variable projection (least squares on the loss).

Prints two Markdown tables: the error in a, and the relative error of the predicted N_opt at 10× the largest
budget; each the noise-free error, and mean ± standard deviation over the noisy seeds. One core, a few minutes.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from scaling_lab.errors import FitError
from scaling_lab.fitting.approach2 import Approach2Config, fit_approach2
from scaling_lab.fitting.approach3 import Approach3Config, VpnlsFit, fit_approach3
from scaling_lab.fitting.laws import CHINCHILLA_APPROACH3, ChinchillaLaw
from scaling_lab.fitting.synthetic import isoflop_table

SURFACES = {
    "Chinchilla α=0.34 β=0.28 (a=0.452)": CHINCHILLA_APPROACH3,
    "α=0.45 β=0.20 (a=0.308)": ChinchillaLaw(E=1.7, A=400.0, B=400.0, alpha=0.45, beta=0.20),
    "α=0.20 β=0.45 (a=0.692)": ChinchillaLaw(E=1.7, A=400.0, B=400.0, alpha=0.20, beta=0.45),
}
"""Hoffmann et al. 2022's fit (eq. 10) and two surfaces far more asymmetric, where the parabola's bias grows."""
BUDGETS = np.geomspace(1e18, 1e21, 6)
ESTIMATORS = ("parabola", "cubic", "akima", "approach 3", "VPNLS")


def estimates(table, noise: float, flops: float) -> dict[str, tuple[float, float]]:
    """(a, N_opt at ``flops``) by every estimator (NaN where one cannot fit the table)."""
    out: dict[str, tuple[float, float]] = {}
    failed = (float("nan"), float("nan"))
    # multiplicative noise: std = noise × loss is a line of slope 1 in log-log, through (1, noise) and (10, 10 noise)
    akima = Approach2Config(curve="akima", seed_noise_std=(noise, 10 * noise), seed_noise_loss=(1.0, 10.0))
    for curve, config in (("parabola", Approach2Config()), ("cubic", Approach2Config(curve="cubic")), ("akima", akima)):
        try:
            result = fit_approach2(table, config)
            out[curve] = (result.a.value, float(result.n_opt(flops)))
        except FitError:
            out[curve] = failed
    try:
        result = fit_approach3(table, Approach3Config(method="vpnls"))
        out["approach 3"] = (result.a.value, float(result.law.n_opt(flops)))
        vpnls = result.vpnls
        law = vpnls.estimates.law if isinstance(vpnls, VpnlsFit) else None
        out["VPNLS"] = failed if law is None else (law.a, float(law.n_opt(flops)))
    except FitError:
        out["approach 3"] = out["VPNLS"] = failed
    return out


def cell(errors: np.ndarray, scale: float, digits: int) -> str:
    """mean ± sd of the finite errors (× scale), with the count of failed fits."""
    failed = int(np.isnan(errors).sum())
    if failed == len(errors):
        return "failed"
    text = f"{scale * np.nanmean(errors):+.{digits}f}"
    if len(errors) > 1:
        text += f" ± {scale * np.nanstd(errors):.{digits}f}"
    return text + (f" ({failed} failed)" if failed else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20, help="noisy tables per surface and design")
    parser.add_argument("--noise", type=float, default=0.005, help="std of log loss (0.005 = 0.5 %%)")
    parser.add_argument("--offset", type=float, default=0.3, help="decades between a slice's centre and N_opt")
    parser.add_argument("--span", type=float, default=0.75, help="decades each side of a slice's centre")
    parser.add_argument("--sizes", type=int, default=7, help="sizes per budget")
    args = parser.parse_args()
    start = time.perf_counter()
    designs = {
        f"{args.offset:+g}": np.full(len(BUDGETS), args.offset),
        f"{args.offset:+g} → {-args.offset:+g}": np.linspace(args.offset, -args.offset, len(BUDGETS)),
    }
    target = 10 * BUDGETS[-1]
    a_rows, n_rows = [], []
    last = ("", "")  # the surface and design of the previous row: repeated ones are left blank
    for name, law in SURFACES.items():
        for design, offsets in designs.items():
            grid = {"budgets": BUDGETS, "sizes_per_budget": args.sizes, "span_decades": args.span,
                    "offset_decades": offsets}  # fmt: skip
            tables = {
                "none": [isoflop_table(law, **grid)],
                f"{args.noise:.1%}": [isoflop_table(law, noise=args.noise, seed=s, **grid) for s in range(args.seeds)],
            }
            for noise, drawn in tables.items():
                fits = [estimates(table, args.noise, target) for table in drawn]
                shown = (name if name != last[0] else "", design if (name, design) != last else "")
                last = (name, design)
                label = f"| {shown[0]} | {shown[1]} | {noise} | "
                a_errors = {e: np.array([fit[e][0] for fit in fits]) - law.a for e in ESTIMATORS}
                n_errors = {e: np.array([fit[e][1] for fit in fits]) / law.n_opt(target) - 1 for e in ESTIMATORS}
                a_rows.append(label + " | ".join(cell(a_errors[e], 1, 3) for e in ESTIMATORS) + " |")
                n_rows.append(label + " | ".join(cell(n_errors[e], 100, 1) for e in ESTIMATORS) + " |")
    header = "| surface | slice centres (decades from N_opt) | noise | " + " | ".join(ESTIMATORS) + " |"
    rule = "| --- | --- | --- | " + " | ".join("---" for _ in ESTIMATORS) + " |"
    print(
        f"{len(BUDGETS)} budgets 1e18–1e21 FLOPs, {args.sizes} sizes per budget over ±{args.span} decades around a "
        f"centre off N_opt by the decades shown; noisy rows: mean ± sd over {args.seeds} seeds.\n"
    )
    print("Error in a (estimate − truth):\n")
    print("\n".join([header, rule, *a_rows]))
    print(f"\nError of the predicted N_opt at C = {target:.0e} (10× the largest budget), %:\n")
    print("\n".join([header, rule, *n_rows]))
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
