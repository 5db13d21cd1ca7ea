"""Make the small stored results under data/examples/ that the notebooks and their tests read.

1. ``tiny_isoflop``: a REAL sweep, trained here with ``sl-train`` (5 sizes × 3 FLOP budgets, byte-level, the
   embedded corpus, CPU), then gathered with ``sl-collect`` into ``tiny_isoflop.parquet/.csv`` (final points) and
   ``tiny_isoflop_curves.parquet/.csv`` (eval-loss curves). The run records themselves stay in a scratch
   results directory (not committed).
2. ``synthetic_two_mix``: an isoFLOP fit table with a ``group`` column, drawn with noise from two PUBLISHED laws
   (Hoffmann et al. 2022 approach 3 as "mix_a", Besiroglu et al. 2024's refit as "mix_b") by
   :func:`scaling_lab.fitting.synthetic.isoflop_table`, for the data-mix comparison notebook.
3. ``docs/dashboard/loss_vs_flops_envelope.png/.svg``: the sweep's eval curves against FLOPs with approach 1's
   envelope, drawn by :func:`scaling_lab.plotting.figures.envelope_figure` (the dashboard guide's figure).

    python scripts/make_example_results.py                    # ~15 minutes on 2 shared cores (2 jobs × 1 thread)
    python scripts/make_example_results.py --skip-sweep       # reuse the stored sweep table: synthetic + figure

No library logic here: the script only calls the CLIs and the library.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from scaling_lab.fitting.run import ExtrapolationConfig, FitConfig, fit_input
from scaling_lab.fitting.synthetic import isoflop_table
from scaling_lab.fitting.table import TableConfig, load_input
from scaling_lab.planning import PUBLISHED_LAWS
from scaling_lab.plotting.figures import envelope_figure, save
from scaling_lab.sweep.collect import write_table_atomically

REPO = Path(__file__).resolve().parents[1]
SWEEP = "tiny_isoflop"
SIZES = "n1k,n3k,n7k,n12k,n25k"  # 5 sizes per budget: approach 2 fits a parabola to ≥ 5 (fitting/approach2.py)
# Budgets (exact FLOPs, Chinchilla Appendix F) from 3e10 to 3e11: a pilot with these presets found the 1e11
# optimum at n3k, so n1k…n25k bracket the minimum of every slice.
BUDGETS = "3e10,1e11,3e11"
# Held-out tokens per final loss: 256 sequences of 128 (the library default is 2**19; small here to keep the
# example to minutes). The eval set is the same for every run of the sweep (data.seed is fixed).
EVAL_TOKENS = 32768
# The two "mixes" are two published laws; their budgets span the Chinchilla paper's isoFLOP range (6e18–3e21 FLOPs,
# Hoffmann et al. 2022 Figure 3); 1 % multiplicative noise, as in the fitter's recovery tests.
MIX_LAWS = {"mix_a": "chinchilla", "mix_b": "besiroglu2024"}
MIX_BUDGETS = np.geomspace(6e18, 3e21, 5)
MIX_NOISE = 0.01


def train_sweep(results_dir: Path, n_jobs: int) -> None:
    """Run the real sweep with sl-train (Hydra multirun, joblib launcher, one thread per job)."""
    command = [
        sys.executable, "-m", "scaling_lab.cli.train", "-m",
        f"sweep={SWEEP}", f"model={SIZES}", "budget=flops", f"budget.value={BUDGETS}",
        f"data.eval_bytes={EVAL_TOKENS}", f"curve_eval_tokens={EVAL_TOKENS}",
        "logger=none", "debug.progress=false", "threads=1", "launcher=local", f"hydra.launcher.n_jobs={n_jobs}",
        f"paths.results_dir={results_dir}",
    ]  # fmt: skip
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=REPO)


def collect_sweep(results_dir: Path, out_dir: Path) -> None:
    """Gather the sweep's records into data/examples/tiny_isoflop*.{parquet,csv} with sl-collect."""
    command = [
        sys.executable, "-m", "scaling_lab.cli.collect",
        f"stores=[{results_dir / SWEEP}]", f"out={out_dir / SWEEP}",
    ]  # fmt: skip
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=REPO)


def two_mix_table(seed: int = 0) -> pd.DataFrame:
    """One isoFLOP table per published law, labelled by ``group``; run ids unique across groups."""
    frames = []
    for offset, (group, law_name) in enumerate(MIX_LAWS.items()):
        frame = isoflop_table(
            PUBLISHED_LAWS[law_name],
            budgets=MIX_BUDGETS,
            sizes_per_budget=7,
            span_decades=0.6,
            noise=MIX_NOISE,
            seed=seed + offset,
        )
        frame["group"] = group
        frame["run_id"] = group + "_" + frame["run_id"]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def dashboard_figure(table: Path, docs_dir: Path) -> list[Path]:
    """docs/dashboard/loss_vs_flops_envelope.{png,svg}: every run's eval curve against exact FLOPs, coloured by size,
    with approach 1's lower envelope (the chart the dashboard guide asks for, drawn by our own plotting code)."""
    data = load_input(table, TableConfig(store_n_params="total", store_flops="exact"))
    config = FitConfig(approaches=("approach1",), extrapolation=ExtrapolationConfig(holdout_budgets=0))
    outcome = fit_input(data, config)
    figure = envelope_figure(data.curves, data.points, outcome.results)
    figure.axes[0].set_title(f"Loss vs FLOPs, sweep {table.stem}: eval curves, envelope")
    return save(figure, docs_dir, "loss_vs_flops_envelope")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=REPO / "data" / "examples")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=None,
        help="where the run records go (default: a temporary directory, removed afterwards)",
    )
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--docs-dir", type=Path, default=REPO / "docs" / "dashboard")
    parser.add_argument("--skip-sweep", action="store_true", help="do not train: reuse the stored sweep table")
    args = parser.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if not args.skip_sweep:
        with tempfile.TemporaryDirectory(prefix="sl_examples_") as scratch:
            results_dir = (args.results_dir or Path(scratch)).resolve()
            train_sweep(results_dir, args.n_jobs)
            collect_sweep(results_dir, args.out_dir.resolve())
    mix = two_mix_table()
    for suffix in ("parquet", "csv"):
        path = args.out_dir / f"synthetic_two_mix.{suffix}"
        write_table_atomically(mix, path)
        print(f"synthetic two-mix: {path}")
    for path in dashboard_figure(args.out_dir / f"{SWEEP}.parquet", args.docs_dir):
        print(f"dashboard figure: {path}")


if __name__ == "__main__":
    main()
