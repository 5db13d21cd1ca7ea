"""Every command's defaults come from its dataclasses: this module puts them in Hydra's ConfigStore.

Each ``configs/sl_<name>.yaml`` starts its defaults list with ``sl_<name>_schema``, the node registered here, so a
setting that a YAML file leaves out composes to its dataclass default; the YAML files keep only what differs (a
group option's own values, a command's required settings) and say where the defaults live. ``sl_train`` is a Hydra
structured config (``RunConfig``: OmegaConf checks the types of overrides as it composes); the other commands'
configs are frozen dataclasses, which OmegaConf would make read-only, so their defaults are registered as plain data
(:func:`~scaling_lab.typed.defaults_of`) and typed afterwards by :func:`~scaling_lab.typed.from_mapping`.

The dataclasses are imported when a command registers its own schema: sl-fit and sl-budget never import torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore

from scaling_lab.typed import defaults_of


@dataclass(frozen=True, kw_only=True)
class CollectConfig:
    """``configs/sl_collect.yaml``: sl-collect has no library config of its own (``sweep.collect.collect`` takes
    these as arguments)."""

    stores: tuple[str, ...]
    """Results roots to gather: a sweep's folder or the whole results root; one path or a list."""
    out: str
    """Output stem: writes OUT.parquet, OUT.csv, OUT_curves.parquet and OUT_curves.csv."""
    statuses: tuple[str, ...] = ("finished",)
    """The statuses of the records that become rows."""


def _train() -> Any:
    from scaling_lab.config.schema import RunConfig

    return RunConfig


def _fit() -> dict[str, Any]:
    from scaling_lab.fitting.bootstrap import BootstrapConfig
    from scaling_lab.fitting.run import FitConfig
    from scaling_lab.fitting.table import TableConfig
    from scaling_lab.tracking import LoggerConfig

    fit, bootstrap = FitConfig(), BootstrapConfig()
    # approaches, the number of resamples and their seed are sl-fit's own top-level settings (``bootstrap=1000``)
    sections = defaults_of(FitConfig, leave_out=("approaches",))
    sections["bootstrap"] = defaults_of(BootstrapConfig, leave_out=("n_resamples", "seed"))
    return {
        "approaches": list(fit.approaches),
        "bootstrap": bootstrap.n_resamples,
        "seed": bootstrap.seed,
        "fit": {"table": defaults_of(TableConfig), **sections},
        "logger": defaults_of(LoggerConfig),
    }


def _budget() -> dict[str, Any]:
    from scaling_lab.planning.app import BudgetAppConfig

    return defaults_of(BudgetAppConfig)


def _verify() -> dict[str, Any]:
    from scaling_lab.sweep.verify import VerifyConfig

    return defaults_of(VerifyConfig, leave_out=("train_overrides",))  # given after --, not a setting of the file


def _collect() -> dict[str, Any]:
    return defaults_of(CollectConfig)


def _dashboard() -> dict[str, Any]:
    from scaling_lab.dashboards import DashboardConfig

    return defaults_of(DashboardConfig)


SCHEMAS: dict[str, Callable[[], Any]] = {
    "sl_train": _train,
    "sl_fit": _fit,
    "sl_budget": _budget,
    "sl_verify": _verify,
    "sl_collect": _collect,
    "sl_dashboard": _dashboard,
}
"""The node of each command's config (``configs/<name>.yaml``), by config name; sl-plan composes sl_train."""


def register_schema(config_name: str) -> None:
    """Register the defaults of command ``config_name`` as ``<config_name>_schema`` (idempotent); a config without
    one (a test's own) registers nothing."""
    if config_name in SCHEMAS:
        ConfigStore.instance().store(name=f"{config_name}_schema", node=SCHEMAS[config_name]())
