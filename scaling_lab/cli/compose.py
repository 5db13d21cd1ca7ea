"""sl_train configs composed with Hydra outside ``@hydra.main``: the grid points of a sweep, Hydra's output folder,
and what the launcher running a job says about this host.

This is where the library meets Hydra: :func:`register_configs` puts the typed schema in Hydra's ConfigStore,
:func:`register_resolvers` the grid arithmetic of ``sweep/grids.py`` in OmegaConf, and :func:`expand_grid` turns
``sl-train -m`` overrides into typed :class:`~scaling_lab.sweep.grids.GridPoint` objects. Everything below ``cli/``
takes those objects and plain arguments, never Hydra's global state.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from scaling_lab.cli import CONFIGS_DIR
from scaling_lab.cli.hydra_errors import HYDRA_ERRORS, hydra_error_message
from scaling_lab.cli.schemas import register_schema
from scaling_lab.config.schema import run_config_from_dict
from scaling_lab.cores import usable_cores
from scaling_lab.errors import ConfigError
from scaling_lab.sweep.grids import GridPoint, isoflop_target_n, pick

# Hydra launchers that run every job in processes of this host (basic, joblib, submitit's local one); any other
# (submitit's SLURM) runs them on other machines, whose devices and memory this host cannot check.
LOCAL_LAUNCHERS = ("BasicLauncher", "JoblibLauncher", "LocalLauncher")


def register_configs() -> None:
    """Register RunConfig as ``sl_train_schema`` in the ConfigStore: every sl_train default comes from it."""
    register_schema("sl_train")


def register_resolvers() -> None:
    """Make ``${sl.isoflop_n:...}`` and ``${sl.pick:...}`` available to configs (idempotent)."""
    for name, function in (("sl.isoflop_n", isoflop_target_n), ("sl.pick", pick)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)


def jobs_at_once_from_hydra() -> int:
    """How many jobs the active Hydra launcher runs at once on this host (1 outside a parallel launcher)."""
    if not HydraConfig.initialized():
        return 1
    launcher = HydraConfig.get().launcher
    n_jobs = launcher.get("n_jobs") if hasattr(launcher, "get") else None
    if n_jobs is None:
        return 1
    n_jobs = int(n_jobs)
    return usable_cores() if n_jobs == -1 else max(1, n_jobs)  # joblib: -1 means one job per core


def sweep_jobs(overrides: Sequence[Override]) -> list[list[str]]:
    """The jobs of a multirun, as Hydra's basic sweeper makes them: a sweep override (a comma list ``a,b``,
    ``range(start,stop[,step])``, ``choice(...)``) expands to one ``key=value`` per value, any other override stays
    one ``key=value``; a key given twice keeps its first place and its last values; the jobs are the Cartesian
    product in that key order (the last key varies fastest)."""
    values_by_key: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            values_by_key[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            values_by_key[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise HydraException(f"{override.input_line}: an interval sweeps no values; list them (a,b,c) or use"
                                 " range(start,stop,step)")  # fmt: skip
    return [list(job) for job in itertools.product(*values_by_key.values())]


def _base_config(parser: OverridesParser, overrides: Sequence[str], config_name: str) -> DictConfig:
    """The sweep's own config, with its ``hydra`` node: composed from the overrides that sweep nothing (inside
    ``initialize_config_dir``)."""
    fixed = [o.input_line for o in parser.parse_overrides(list(overrides)) if not o.is_sweep_override()]
    return compose(config_name, overrides=fixed, return_hydra_config=True)


def expand_grid(overrides: Sequence[str], *, config_name: str = "sl_train") -> list[GridPoint]:
    """Every grid point of the sweep that ``sl-train -m <overrides>`` would launch, in launch order (the sweep
    file's ``hydra.sweeper.params``, then the command line's overrides: :func:`sweep_jobs`); a sweep without any (an
    empty range or list) is a ConfigError, as is any override, sweep file or point that does not compose."""
    register_configs()
    register_resolvers()
    try:
        parser = OverridesParser.create()
        with initialize_config_dir(config_dir=CONFIGS_DIR, version_base="1.3"):
            base = _base_config(parser, overrides, config_name)
            launcher = base.hydra.launcher
            runs_here = str(launcher.get("_target_", "")).rsplit(".", 1)[-1] in LOCAL_LAUNCHERS
            tasks = 1 if runs_here else int(launcher.get("tasks_per_node") or 1) * int(launcher.get("nodes") or 1)
            params = base.hydra.sweeper.get("params")
            params = OmegaConf.to_container(params, resolve=False) if params is not None else {}
            sweep_lines = [f"{key}={value}" for key, value in params.items()] + list(overrides)
            points = []
            for job in sweep_jobs(parser.parse_overrides(sweep_lines)):
                cfg = compose(config_name, overrides=job)
                config = run_config_from_dict(OmegaConf.to_container(cfg, resolve=True))
                points.append(GridPoint(overrides=tuple(job), config=config, runs_here=runs_here,
                                        launcher_tasks=tasks))  # fmt: skip
    except HYDRA_ERRORS as error:  # unknown group option, bad key, bad interpolation, YAML syntax
        raise ConfigError(f"sweep {' '.join(overrides)}: {hydra_error_message(error)}") from error
    if not points:
        raise ConfigError(f"sweep {' '.join(overrides)} has no grid points (an empty range or list): check its sweep"
                          " overrides and hydra.sweeper.params in the sweep file")  # fmt: skip
    return points


def hydra_output_dir(overrides: Sequence[str], *, multirun: bool, config_name: str = "sl_train") -> Path:
    """The folder Hydra creates for ``sl-train [-m] <overrides>``: ``hydra.sweep.dir`` under ``-m``, else
    ``hydra.run.dir``, resolved now (a ``${now:...}`` in it is this second). Call :func:`expand_grid` first."""
    register_configs()
    register_resolvers()
    with initialize_config_dir(config_dir=CONFIGS_DIR, version_base="1.3"):
        hydra = _base_config(OverridesParser.create(), overrides, config_name).hydra
        return Path(str(hydra.sweep.dir if multirun else hydra.run.dir))
