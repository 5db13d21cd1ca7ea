"""sl-fit: fit scaling laws to a table or a results store; writes OUT/fit.json, OUT/report.txt and figures.

    sl-fit input=PATH out=DIR [approaches=[approach3,approach2]] [bootstrap=N] [seed=S] [fit.approach3.delta=...]

The only code of the fitter that sees DictConfig: it converts the config to the typed dataclasses of
scaling_lab.fitting and calls the library.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from scaling_lab.cli import CONFIGS_DIR  # noqa: F401 (tests compose sl_fit from here)
from scaling_lab.cli.app import hydra_app
from scaling_lab.errors import ConfigError
from scaling_lab.fitting.approach1 import Approach1Config
from scaling_lab.fitting.approach2 import Approach2Config
from scaling_lab.fitting.approach3 import Approach3Config
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.kaplan import KaplanConfig
from scaling_lab.fitting.run import ExtrapolationConfig, FitConfig, FitOutcome, fit_input, write_outputs
from scaling_lab.fitting.table import FitInput, TableConfig, load_input
from scaling_lab.outputs import check_output_folder
from scaling_lab.typed import from_mapping

if TYPE_CHECKING:
    from scaling_lab.tracking import LoggerConfig

T = TypeVar("T")


def build(cls: type[T], values: dict[str, Any] | None, prefix: str) -> T:
    """A frozen fitting config from a plain mapping (lists become tuples in tuple fields); unknown keys and values of
    the wrong type name the field."""
    return from_mapping(cls, values, prefix, check_types=True)


def fit_config(cfg: DictConfig) -> tuple[TableConfig, FitConfig]:
    """The typed configs of one sl-fit call."""
    fit = OmegaConf.to_container(cfg.fit, resolve=True)
    assert isinstance(fit, dict)
    approaches = cfg.approaches
    approaches = [approaches] if isinstance(approaches, str) else list(approaches)
    if not isinstance(cfg.bootstrap, int) or isinstance(cfg.bootstrap, bool):
        raise ConfigError(f"bootstrap={cfg.bootstrap!r} must be a whole number of resamples, for example 1000")
    boot = {**(fit.get("bootstrap") or {}), "n_resamples": cfg.bootstrap, "seed": cfg.seed}
    config = FitConfig(
        approaches=tuple(approaches),
        approach3=build(Approach3Config, fit.get("approach3"), "fit.approach3"),
        approach2=build(Approach2Config, fit.get("approach2"), "fit.approach2"),
        approach1=build(Approach1Config, fit.get("approach1"), "fit.approach1"),
        kaplan=build(KaplanConfig, fit.get("kaplan"), "fit.kaplan"),
        bootstrap=build(BootstrapConfig, boot, "fit.bootstrap"),
        extrapolation=build(ExtrapolationConfig, fit.get("extrapolation"), "fit.extrapolation"),
    )
    return build(TableConfig, fit.get("table"), "fit.table"), config


def summary_table(outcome: FitOutcome) -> pd.DataFrame:
    """One row per approach that ran: its exponents a, b and, for approach 3, the law's parameters."""
    rows = []
    for name, result in outcome.results.items():
        values = result.to_dict()
        row = {"approach": name, "a": values.get("a"), "b": values.get("b")}
        row.update({k: values.get(k) for k in ("E", "A", "B", "alpha", "beta", "G") if k in values})
        rows.append(row)
    return pd.DataFrame(rows)


def logger_config(cfg: DictConfig) -> LoggerConfig:
    """The typed ``logger`` section (checked before the fit writes anything)."""
    from scaling_lab.tracking import LoggerConfig

    return build(LoggerConfig, OmegaConf.to_container(cfg.logger, resolve=True), "logger")  # type: ignore[arg-type]


def log_to_wandb(cfg: DictConfig, logger: LoggerConfig, data: FitInput, outcome: FitOutcome,
                 figures: dict[str, list[Path]]) -> None:  # fmt: skip
    """Store input: the fit as a job_type="fit" run in the sweep's wandb group, with figures and the fit table."""
    from scaling_lab.tracking import open_tracker

    if logger.backend == "none" or data.kind != "store":
        return
    if logger.dir == ".":
        logger = dataclasses.replace(logger, dir=str(Path(cfg.out)))
    group = "+".join(data.sweeps) or Path(data.source).name
    with open_tracker(
        logger,
        name=f"fit-{group}",
        group=group,
        job_type="fit",
        run_config=OmegaConf.to_container(cfg, resolve=True),  # type: ignore[arg-type]
        tags=["fit"],
    ) as tracker:
        tracker.summary(
            {
                f"{name}.{k}": v
                for name, r in outcome.results.items()
                for k, v in r.to_dict().items()
                if isinstance(v, int | float)
            }
        )
        tracker.log_table("fit", summary_table(outcome))
        tracker.log_table("points", data.points)
        for name, paths in figures.items():
            tracker.log_figure(name, str(next(p for p in paths if p.suffix == ".png")))


def run(cfg: DictConfig) -> tuple[FitInput, FitOutcome]:
    table_config, config = fit_config(cfg)
    check_output_folder(cfg.out, "out")  # before the fit: a bootstrap can take minutes
    logger = logger_config(cfg)
    data = load_input(cfg.input, table_config, cfg.curves)
    outcome = fit_input(data, config)
    out = Path(cfg.out)
    figures: dict[str, list[Path]] = {}
    if cfg.figures:
        from scaling_lab.plotting.figures import all_figures

        figures = all_figures(data.points, data.curves, outcome.results, out)
    fit_path, report_path = write_outputs(outcome, out)
    print(report_path.read_text(), end="")
    print(f"wrote {fit_path} and {report_path}")
    log_to_wandb(cfg, logger, data, outcome, figures)
    return data, outcome


@hydra_app("sl_fit")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
