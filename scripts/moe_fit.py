"""Fit the unified MoE law (Clark et al. 2022) to a results store holding dense and MoE runs, one law per D.

    python scripts/moe_fit.py --store results/moe_experts --out fits/moe_experts --bootstrap 200

Writes moe_law.json (read by ``sl-budget moe.law=fits/moe_experts/moe_law.json``) and report.txt into --out and
prints the report: coefficients with bootstrap intervals and each expert count's effective-parameter multiplier.
Every number comes from scaling_lab.fitting.moe_law.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scaling_lab.atomic import write_text_atomically
from scaling_lab.errors import exit_on_user_error
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.moe_law import MoELawConfig, fit_store, write_moe_laws
from scaling_lab.outputs import check_output_folder
from scaling_lab.results.store import load_table


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, type=Path, help="results store (a sweep folder or a root)")
    parser.add_argument("--out", required=True, type=Path, help="folder for moe_law.json and report.txt")
    parser.add_argument("--n-params", default="active", help="active | active_nonembed")
    parser.add_argument("--n-tokens", type=float, default=None, help="fit one D only (default: every shared D)")
    parser.add_argument("--bootstrap", type=int, default=200, help="resamples of points (0: no intervals)")
    args = parser.parse_args(argv)
    config = MoELawConfig(n_params=args.n_params, n_tokens=args.n_tokens)
    boot = BootstrapConfig(n_resamples=args.bootstrap, by="point")
    check_output_folder(args.out, "--out")
    laws = fit_store(load_table(args.store), config, boot=boot, source=str(args.store))
    report = "\n\n".join(law.report() for law in laws)
    write_moe_laws(laws, args.out / "moe_law.json")
    write_text_atomically(args.out / "report.txt", report + "\n")
    print(report)


if __name__ == "__main__":
    main()
