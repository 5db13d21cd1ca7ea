"""The CPU MoE study's analysis: dense against routed models at equal active parameters (and so at equal FLOPs, up to
the router's 2·d·E per token), the unified law (Clark et al. 2022) with its effective-parameter multipliers, and the
throughput cost of routing per token.

    python scripts/moe_study.py --store results/moe_cpu --out data/moe_cpu --bootstrap 200

Writes into --out: table.csv (the store's table), comparison.csv, report.txt, moe_law.json and moe.png/.svg. Every
number comes from the library (results.store, fitting.moe_law, plotting.moe).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from scaling_lab.errors import ConfigError, exit_on_user_error
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.moe_law import MoELawConfig, fit_store, moe_points, write_moe_laws
from scaling_lab.plotting.figures import save
from scaling_lab.plotting.moe import moe_figure
from scaling_lab.results.store import load_records, table_of


def comparison(records, table: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its loss and tokens/s against the dense run of the same model preset (the same attention and
    expert width: active N equal but for the router's d·E) and budget (the routing cost per token)."""
    preset = {r.run_id: r.config["model"]["preset"] for r in records}
    speed = {r.run_id: r.tokens_per_second for r in records}
    rows = table.assign(preset=table["run_id"].map(preset), tokens_per_second=table["run_id"].map(speed),
                        budget=table["n_tokens"].round(-5))  # fmt: skip
    dense = rows.loc[rows["n_experts"] == 1, ["preset", "budget", "loss", "tokens_per_second"]]
    rows = rows.merge(dense, on=["preset", "budget"], suffixes=("", "_dense"))
    rows["loss_ratio"] = rows["loss"] / rows["loss_dense"]
    rows["speed_ratio"] = rows["tokens_per_second"] / rows["tokens_per_second_dense"]
    keep = ["preset", "n_params_active", "n_params_total", "n_experts", "budget", "n_tokens", "flops_exact", "loss",
            "loss_ratio", "tokens_per_second", "speed_ratio"]  # fmt: skip
    return rows[keep].sort_values(["budget", "n_params_active", "n_experts"]).reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("results/moe_cpu"))
    parser.add_argument("--out", type=Path, default=Path("data/moe_cpu"))
    parser.add_argument("--bootstrap", type=int, default=200)
    args = parser.parse_args()
    records = [r for r in load_records(args.store) if r.status == "finished"]
    table = table_of(records)
    if table.empty or table["n_experts"].nunique() < 2:
        raise ConfigError(f"--store {args.store}: needs finished dense and MoE runs (configs/experiment/moe_cpu.yaml)")
    laws = fit_store(table, MoELawConfig(), boot=BootstrapConfig(n_resamples=args.bootstrap, by="point"),
                     source=str(args.store))  # fmt: skip
    compared = comparison(records, table)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "table.csv", index=False)
    compared.to_csv(args.out / "comparison.csv", index=False)
    write_moe_laws(laws, args.out / "moe_law.json")
    by_experts = compared.groupby("n_experts")
    lines = [f"MoE study: {len(records)} runs, store {args.store}",
             "mean over sizes and budgets, against the dense run of the same active N and budget:",
             *[f"  E={int(e)}: loss ratio {rows['loss_ratio'].mean():.4f} (min {rows['loss_ratio'].min():.4f},"
               f" max {rows['loss_ratio'].max():.4f}); tokens/s ratio {rows['speed_ratio'].mean():.3f}"
               f" (min {rows['speed_ratio'].min():.3f}, max {rows['speed_ratio'].max():.3f})"
               for e, rows in by_experts],
             "", compared.to_string(index=False), "", *[law.report() + "\n" for law in laws]]  # fmt: skip
    (args.out / "report.txt").write_text("\n".join(lines) + "\n")
    points = {law.n_tokens: moe_points(table, MoELawConfig(n_tokens=law.n_tokens), str(args.store)) for law in laws}
    save(moe_figure(points, {law.n_tokens: law for law in laws}), args.out, "moe")
    print("\n".join(lines))


if __name__ == "__main__":
    exit_on_user_error(main)()
