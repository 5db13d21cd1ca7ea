"""Compare sweeps side by side: FLOPs spent (from the dry-run plan) and the fitted exponent a with its interval.

    python scripts/compare_fits.py isoflop_cosine isoflop_wsd            # after sweeping and fitting both:
    #   sl-train -m experiment=NAME launcher=local
    #   sl-fit input=results/NAME out=fits/NAME bootstrap=200 fit.table.store_flops=exact

Reads ``fits/NAME/fit.json`` for each sweep file NAME and plans ``experiment=NAME`` (no training) for the FLOPs
the sweep spends, WSD cooldown branches included. Prints a Markdown table (the README's "WSD against cosine").
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scaling_lab.cli.compose import expand_grid
from scaling_lab.errors import TableError, exit_on_user_error
from scaling_lab.fitting.laws import read_fit_json
from scaling_lab.sweep.dry_run import dry_run_table


def _a(fit: dict, approach: str, path: Path) -> str:
    result = fit.get(approach)
    if not result:
        return "not fitted"
    try:
        low, high = (result.get("ci95") or {}).get("a") or (None, None)  # null bounds: the interval failed
        return f"{result['a']:.2f} [{_bound(low)}, {_bound(high)}]"
    except (AttributeError, KeyError, TypeError, ValueError):  # a fit.json of another shape
        raise TableError(
            f"{path}: {approach}.a must be a number and {approach}.ci95.a a [low, high] pair; rerun sl-fit"
        ) from None


def _bound(value: float | None) -> str:
    return "nan" if value is None else f"{value:.2f}"


def row(name: str, fits_dir: Path, reference_flops: float | None) -> tuple[str, float]:
    path = fits_dir / name / "fit.json"
    if not path.is_file():
        raise TableError(f"{path} is missing: run sl-fit input=results/{name} out={fits_dir / name} first")
    fit = read_fit_json(path)
    dry_run = dry_run_table(expand_grid([f"experiment={name}"]), probe=False)
    spent = float(dry_run.flops_spent.sum())
    share = f"{spent / reference_flops:.0%}" if reference_flops else "100%"
    runs, points = len(dry_run), int(dry_run.points.sum())
    line = (f"| `{name}` | {runs} | {points} | {spent:.3g} ({share}) | {_a(fit, 'approach2', path)} |"
            f" {_a(fit, 'approach3', path)} |")  # fmt: skip
    return line, spent


@exit_on_user_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+", help="sweep files in configs/experiment/; the first is the reference")
    parser.add_argument("--fits-dir", type=Path, default=Path("fits"))
    args = parser.parse_args()
    print("| sweep | runs | points | FLOPs spent (exact) | a, approach 2 [95 %] | a, approach 3 [95 %] |")
    print("| --- | --- | --- | --- | --- | --- |")
    reference = None
    for name in args.sweeps:
        line, spent = row(name, args.fits_dir, reference)
        reference = reference or spent
        print(line)


if __name__ == "__main__":
    main()
