"""sl-train: train one grid point (or, with ``-m``, a sweep of them) and write its run record.

    sl-train model=n7k budget.value=1e6
    sl-train -m model=n3k,n7k budget.value=5e5,1e6 sweep=demo

The only module of the trainer that sees a DictConfig: it converts to a typed RunConfig and calls
:func:`scaling_lab.train.run.run_point`.
"""

from __future__ import annotations

import sys
import warnings

import hydra
from omegaconf import DictConfig, OmegaConf

from scaling_lab.cli import CONFIGS_DIR
from scaling_lab.config.schema import register_configs, run_config_from_dict
from scaling_lab.errors import ScalingLabError, exit_on_user_error, print_warning, user_line
from scaling_lab.sweep.grids import register_resolvers

register_configs()
register_resolvers()  # ${sl.isoflop_n:...} in sweep files (configs/experiment/isoflop.yaml)


def _multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@hydra.main(version_base="1.3", config_path=CONFIGS_DIR, config_name="sl_train")
def main(cfg: DictConfig) -> None:
    """Hydra task: one run. A user error ends a single run with exit status 2; in a sweep it is printed and the
    sweep goes on (one bad grid point never sinks the sweep)."""
    if _multirun():
        with warnings.catch_warnings():  # one line per warning, as in a single run
            warnings.showwarning = print_warning
            try:
                _run(cfg)
            except ScalingLabError as error:
                print(f"error: {user_line(error)}", file=sys.stderr)
    else:
        exit_on_user_error(_run)(cfg)


def _run(cfg: DictConfig) -> None:
    from scaling_lab.train.run import run_point  # torch and transformers load only after the config is valid

    config = run_config_from_dict(OmegaConf.to_container(cfg, resolve=True))
    run_point(config)


def cli() -> None:
    """Console entry: compose and validate every grid point first, and check that each can start (writable folders,
    device, memory, checkpoint), so that a bad override, sweep file, sweep name, path or size ends with one line and
    exit 2 *before* Hydra creates output directories or any point trains."""
    from scaling_lab.sweep.plan import expand_grid
    from scaling_lab.train.preflight import check_can_start

    overrides = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    for point in exit_on_user_error(expand_grid)(overrides):
        exit_on_user_error(check_can_start)(point.config, on_this_host=point.runs_here)
    main()


if __name__ == "__main__":
    cli()
