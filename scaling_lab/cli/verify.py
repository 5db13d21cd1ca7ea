"""sl-verify: train a fit's prediction at a larger budget with the sweep's recipe and report the error.

    sl-verify fit_json=fits/quickstart/fit.json store=results/quickstart out=fits/quickstart/verify
    sl-verify fit_json=fits/quickstart store=results/quickstart out=fits/quickstart/verify --dry-run     # plan only
    sl-verify ... target_multiple=30 sizes=5 'seeds=[0,1,2]' -- launcher=local logger=none   # after --: sl-train's

Orchestrates: the fit's predictions and the recipe (scaling_lab.fitting.verify, scaling_lab.sweep.verify), the
slice's dry run (sl-plan's), ``sl-train -m`` (which skips finished points: a rerun only trains what is missing),
the comparison, and writes OUT/verify.json, OUT/report.txt, OUT/verify.png/.svg and the slice's sweep file
OUT/sweep/experiment/<sweep>.yaml.
"""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from scaling_lab.atomic import text_written_for, write_text_atomically
from scaling_lab.cli import CONFIGS_DIR
from scaling_lab.cli.app import resolved
from scaling_lab.cli.compose import expand_grid
from scaling_lab.cli.hydra_errors import HYDRA_ERRORS, hydra_error_message
from scaling_lab.cli.schemas import register_schema
from scaling_lab.errors import ConfigError, ReportedError, TableError, exit_on_user_error
from scaling_lab.fitting.approach2 import CURVES, MIN_SIZES
from scaling_lab.fitting.laws import frontier_block
from scaling_lab.fitting.run import _finite
from scaling_lab.fitting.verify import (
    Prediction,
    VerifyResult,
    approach3_profile,
    compare,
    fit_accounting,
    measure,
    planned_sizes,
    predict,
    read_fit,
)
from scaling_lab.outputs import check_output_folder
from scaling_lab.sweep import verify as slice_
from scaling_lab.sweep.dry_run import dry_run_table, format_dry_run
from scaling_lab.typed import from_mapping

DRY_RUN_FLAG = "--dry-run"


def to_config(cfg: DictConfig, train_overrides: list[str]) -> slice_.VerifyConfig:
    """The typed config of a composed ``sl_verify`` config and the sl-train overrides given after ``--``."""
    values = resolved(cfg)
    return from_mapping(slice_.VerifyConfig, {**values, "train_overrides": train_overrides}, "")


def _curve(config: slice_.VerifyConfig, fit: dict[str, Any], source: str, n_sizes: int) -> str:
    if config.curve != "auto":
        return config.curve
    block = frontier_block(fit, "approach2", source)
    curve = block.curve if block else None
    return curve if curve in CURVES and n_sizes >= MIN_SIZES[curve] else "parabola"


def _profile_sizes(predictions: dict[str, Prediction], sizes: list[float]) -> np.ndarray:
    ends = [*sizes, *(v for p in predictions.values() for v in (p.n_opt.interval or (p.n_opt.value,)))]
    return np.geomspace(min(ends) / 1.5, max(ends) * 1.5, 200)


def sweep_file(recipe: slice_.Recipe, members: Sequence[slice_.Member], *, sweep: str, budget: dict[str, Any],
               seeds: Sequence[int], results_dir: Path, header: str) -> str:  # fmt: skip
    """The slice as a sweep file (``configs/experiment`` style): one grid point per size, swept over the seeds."""
    config = json.loads(json.dumps(recipe.config))
    kind = recipe.family.kind
    columns = {"preset": ("preset",), "target": ("target_n",), "explicit": ("n_layers", "width", "n_heads")}[kind]
    for index, name in enumerate(columns):
        config["model"][name] = f"${{sl.pick:${{grid.points}},${{grid.point}},{index}}}"
    config.update(
        sweep=sweep, budget=budget, grid={"point": 0, "points": [[m.model[c] for c in columns] for m in members]},
        paths={"results_dir": str(results_dir), "cache_dir": recipe.cache_dir},
        hydra={"sweeper": {"params": {"grid.point": f"range(0,{len(members)})",
                                      "seed": ",".join(str(s) for s in seeds)}}},
    )  # fmt: skip
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return "# @package _global_\n" + comment + OmegaConf.to_yaml(OmegaConf.create(config))


def run(cfg: DictConfig, train_overrides: list[str]) -> VerifyResult:
    config = to_config(cfg, train_overrides)
    out = Path(config.out)
    check_output_folder(out, "out")  # before planning and training the slice
    fit, fit_path = read_fit(config.fit_json)
    n_column, flops_column, max_flops = fit_accounting(fit, str(fit_path))
    target = float(config.flops) if config.flops is not None else config.target_multiple * max_flops
    predictions, skipped = predict(fit, target, source=str(fit_path))  # before the store: a bad fit costs nothing
    store = Path(config.store)
    recipe = slice_.recipe_of(slice_.sweep_records(store, fit, str(fit_path)), store, n_column, flops_column)
    low, high = recipe.n_range
    members = recipe.family.members(low * slice_.FAMILY_SPAN[0], high * slice_.FAMILY_SPAN[1])
    chosen = slice_.snap(members, planned_sizes(predictions, config.sizes, config.min_ratio, config.margin))
    sweep = config.sweep or f"{'+'.join(recipe.sweeps)}_verify"
    results_dir = Path(config.results_dir) if config.results_dir else recipe.results_dir
    if config.train:
        check_output_folder(results_dir, "results_dir" if config.results_dir else "results_dir (the store's)")
    budget = slice_.budget_of(flops_column, n_column, target)
    header = (f"Verification slice written by sl-verify: {fit_path} predicted at C = {target:.4g} ({flops_column}),\n"
              f"trained with the recipe of {store} ({recipe.n_records} runs). Relaunch (finished points are skipped):\n"
              f"  sl-train -m hydra.searchpath=['file://{(out / 'sweep').resolve()}'] experiment={sweep}")  # fmt: skip
    text = sweep_file(recipe, chosen, sweep=sweep, budget=budget, seeds=config.seeds,
                      results_dir=results_dir, header=header)  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:  # the dry run writes nothing where a reader would look
        (Path(folder) / "experiment").mkdir()
        (Path(folder) / "experiment" / f"{sweep}.yaml").write_text(text)
        overrides = slice_.train_overrides(Path(folder), sweep, config.train_overrides)
        table = dry_run_table(expand_grid(overrides), probe=config.probe)

    print(format_dry_run(table))
    planned = [{"n_params": m.n_params, "model": m.model, "flops_per_token": m.flops_per_token,
                "run_ids": [r for r, n in zip(table["run_id"], table[n_column], strict=True) if n == m.n_params]}
               for m in chosen]  # fmt: skip
    meta = {
        "fit": str(fit_path), "store": str(store), "n_recipe_runs": recipe.n_records, "n_params_column": n_column,
        "flops_column": flops_column, "fit_max_flops": max_flops, "target_flops": target,
        "target_multiple": target / max_flops, "verify_sweep": sweep, "results_dir": str(results_dir),
        "seeds": list(config.seeds), "budget": budget, "recipe_notes": recipe.notes, "planned": planned,
        "sweep_file": str(out / "sweep" / "experiment" / f"{sweep}.yaml"),
    }  # fmt: skip
    if not config.train:
        result = VerifyResult(meta=meta, predictions=predictions, skipped=skipped, measured=None)
        print(result.report(), end="")
        print("dry run: nothing trained, nothing written (train=true trains the slice)")
        return result
    sweep_path = out / "sweep" / "experiment" / f"{sweep}.yaml"
    with text_written_for(sweep_path, text, undo_on=ReportedError):  # undone when sl-train refuses to start
        slice_.launch(slice_.train_overrides(out / "sweep", sweep, config.train_overrides))
    runs, missing = slice_.collect(table, results_dir=results_dir, sweep=sweep, n_column=n_column,
                                   flops_column=flops_column)  # fmt: skip
    if runs.empty:
        raise TableError(f"none of the {len(table)} planned runs finished ({', '.join(missing)}): see sl-train's "
                         "output above, fix the cause and rerun sl-verify (finished points are kept)")  # fmt: skip
    if missing:
        warnings.warn(f"{len(missing)} of {len(table)} planned runs have no finished record, left out: "
                      f"{', '.join(missing)}", stacklevel=1)  # fmt: skip
    measured = measure(runs, _curve(config, fit, str(fit_path), runs["n_params"].nunique()))
    result = VerifyResult(meta={**meta, "missing_runs": missing, "runs": runs.to_dict(orient="records")},
                          predictions=predictions, skipped=skipped, measured=measured,
                          comparison=compare(predictions, measured))  # fmt: skip
    text_json = json.dumps(_finite(result.to_dict()), indent=2, allow_nan=False) + "\n"
    if config.figures:
        from scaling_lab.plotting.figures import save
        from scaling_lab.plotting.verify import verify_figure

        profile = None
        if "approach3" in predictions:
            sizes = _profile_sizes(predictions, [s["n_params"] for s in measured.sizes])
            profile = (sizes, *approach3_profile(fit, target, sizes, source=str(fit_path)))
        save(verify_figure(predictions, measured, runs, flops=target, profile=profile), out, "verify")
    write_text_atomically(out / "report.txt", result.report())
    write_text_atomically(out / "verify.json", text_json)
    print(result.report(), end="")
    print(f"wrote {out / 'verify.json'} and {out / 'report.txt'}")
    return result


def compose_config(overrides: list[str]) -> DictConfig:
    """configs/sl_verify.yaml with Hydra overrides, composed with Hydra's compose API: not ``@hydra.main``, because
    the slice's dry run composes sl_train configs (sl-plan's expand_grid), and one process holds one Hydra."""
    register_schema("sl_verify")
    try:
        with initialize_config_dir(config_dir=CONFIGS_DIR, version_base="1.3"):
            return compose("sl_verify", overrides=overrides)
    except HYDRA_ERRORS as error:  # unknown key, bad value, bad override syntax, a YAML syntax error
        raise ConfigError(f"sl-verify {' '.join(overrides)}: {hydra_error_message(error)}") from None


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    """Console entry: sl-verify's Hydra overrides, then ``--`` and sl-train's; ``--dry-run`` is ``train=false``."""
    args = list(sys.argv[1:] if argv is None else argv)
    own, train = (args[: args.index("--")], args[args.index("--") + 1 :]) if "--" in args else (args, [])
    overrides = [arg for arg in own if arg != DRY_RUN_FLAG] + (["train=false"] if DRY_RUN_FLAG in own else [])
    run(compose_config(overrides), train)


if __name__ == "__main__":
    main()
