"""Benchmark approach 3: our screened multi-start fit and bootstrap against a plain scipy reference loop.

    python scripts/bench_fit.py [--points 250] [--resamples 1000] [--reference-starts 4500] [--jobs -1]

Data: ~250 points from Chinchilla's published law (Hoffmann et al. 2022, eq. 10) on an isoFLOP grid with 1 %
multiplicative noise. Reference: one scipy ``minimize`` (L-BFGS-B, the same analytic objective, gradient and
tolerances, BLAS single-threaded as ours) per start of the 4,500-point grid, as in Hoffmann et al. 2022 App. D.2.
``--reference-starts`` below 4,500 times a random subset and scales the time up to the full grid (printed as
such). The reference bootstrap is never run (hours); its time is the reference fit time × resamples / workers.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
from scipy.optimize import minimize

from scaling_lab.cores import usable_cores
from scaling_lab.fitting.approach3 import Approach3Config, chinchilla_start_grid, design, fit_approach3
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.laws import CHINCHILLA_APPROACH3
from scaling_lab.fitting.objectives import FTOL, GTOL, MAXITER, bounds_for, objective_and_gradient
from scaling_lab.fitting.synthetic import isoflop_table
from scaling_lab.fitting.threads import single_threaded_blas


def reference_fit(log_x: np.ndarray, log_loss: np.ndarray, starts: np.ndarray, delta: float) -> tuple[float, int]:
    """One L-BFGS-B per start, objective rescaled by its value at the start; returns (best objective, converged)."""
    best, converged = np.inf, 0
    with single_threaded_blas():
        for x0 in starts:
            scale = max(objective_and_gradient(x0, log_x, log_loss, "huber", delta)[0], 1e-300)
            result = minimize(
                lambda t, s=scale: tuple(v / s for v in objective_and_gradient(t, log_x, log_loss, "huber", delta)),
                x0,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds_for(2),
                options={"ftol": FTOL, "gtol": GTOL, "maxiter": MAXITER, "maxcor": 20},
            )
            converged += bool(result.success)
            best = min(best, float(result.fun) * scale)
    return best, converged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=250, help="about this many points (10 budgets)")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--reference-starts", type=int, default=4500)
    parser.add_argument("--jobs", type=int, default=-1, help="bootstrap workers (-1 = all cores)")
    parser.add_argument("--repeats", type=int, default=3, help="our full fit is timed this many times (best)")
    args = parser.parse_args()

    table = isoflop_table(
        CHINCHILLA_APPROACH3,
        budgets=np.geomspace(1e18, 1e21, 10),
        sizes_per_budget=max(3, args.points // 10),
        noise=0.01,
        seed=0,
    )
    config = Approach3Config()
    print(f"points={len(table)} starts=4500 cores={usable_cores()} load={os.getloadavg()[0]:.2f}")

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = fit_approach3(table, config)
        times.append(time.perf_counter() - start)
    ours_fit = min(times)
    print(
        f"ours:      full-grid fit {ours_fit:.3f} s (best of {args.repeats}; all: "
        f"{', '.join(f'{t:.3f}' for t in times)}); objective {ours.objective_value:.10g}, "
        f"{ours.n_polished} polished, {ours.n_converged} converged"
    )

    starts = chinchilla_start_grid()
    if args.reference_starts < len(starts):
        starts = starts[np.random.default_rng(0).choice(len(starts), args.reference_starts, replace=False)]
    log_x, log_loss = design(table)
    start = time.perf_counter()
    reference_best, reference_converged = reference_fit(log_x, log_loss, starts, config.delta)
    measured = time.perf_counter() - start
    reference_fit_time = measured * 4500 / len(starts)
    scaled = "" if len(starts) == 4500 else f" (measured {measured:.2f} s on {len(starts)} starts, scaled to 4500)"
    print(
        f"reference: full-grid fit {reference_fit_time:.2f} s{scaled}; best objective {reference_best:.10g}, "
        f"{reference_converged}/{len(starts)} converged"
    )
    print(
        f"ratio fit: reference / ours = {reference_fit_time / ours_fit:.0f}x; objective difference "
        f"{ours.objective_value - reference_best:+.3g} (negative: ours lower)"
    )

    boot = BootstrapConfig(n_resamples=args.resamples, seed=0, n_jobs=args.jobs)
    start = time.perf_counter()
    result = fit_approach3(table, config, boot)
    ours_boot = time.perf_counter() - start
    workers = usable_cores() if args.jobs < 0 else args.jobs
    reference_boot = reference_fit_time * (args.resamples + 1) / workers
    print(
        f"ours:      fit + {args.resamples}-resample bootstrap {ours_boot:.2f} s on {workers} workers "
        f"({result.n_bootstrap_failed} failed); alpha {result.estimates.alpha.format('.4g')}"
    )
    print(f"reference: bootstrap estimated {reference_boot:.0f} s (reference fit x {args.resamples + 1} / {workers})")
    print(f"ratio bootstrap: reference / ours = {reference_boot / ours_boot:.0f}x")


if __name__ == "__main__":
    main()
