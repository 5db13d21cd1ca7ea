"""sl-plan: the dry run of a sweep (trains nothing).

sl-plan experiment=quickstart
sl-plan model=n3k,n7k budget.value=5e5,1e6 --no-probe --out plan.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scaling_lab.cli.app import one_line_errors
from scaling_lab.errors import exit_on_user_error


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = one_line_errors(argparse.ArgumentParser(prog="sl-plan", description=__doc__.split("\n")[0]))
    parser.add_argument("overrides", nargs="*", help="the same Hydra overrides as `sl-train -m` (sweeps allowed)")
    parser.add_argument("--no-probe", action="store_true", help="skip the measured step-time probe")
    parser.add_argument("--out", type=Path, help="also write the table as CSV here")
    args = parser.parse_args(argv)

    from scaling_lab.cli.compose import expand_grid
    from scaling_lab.outputs import check_output_file
    from scaling_lab.sweep.dry_run import format_dry_run
    from scaling_lab.sweep.sweep import Sweep

    if args.out:
        check_output_file(args.out, "--out")  # before the dry run: the probe trains a few steps of every shape
    table = Sweep(tuple(expand_grid(args.overrides))).dry_run(probe=not args.no_probe)
    print(format_dry_run(table))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
