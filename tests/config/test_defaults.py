"""One source of defaults: the dataclasses. Every command's default config, composed by Hydra from configs/, equals
its dataclasses' defaults (plus what the chosen group options set), and no YAML file repeats a dataclass default."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from scaling_lab.budget import BudgetConfig
from scaling_lab.cli import CONFIGS_DIR
from scaling_lab.cli.budget import to_config as budget_config
from scaling_lab.cli.collect import to_config as collect_config
from scaling_lab.cli.compose import register_configs, register_resolvers
from scaling_lab.cli.fit import fit_config, logger_config
from scaling_lab.cli.schemas import SCHEMAS, CollectConfig
from scaling_lab.cli.verify import compose_config as compose_verify
from scaling_lab.cli.verify import to_config as verify_config
from scaling_lab.config.schema import (
    SECTIONS,
    DebugConfig,
    PathsConfig,
    RunConfig,
    run_config_from_dict,
)
from scaling_lab.config.training import OptimConfig, ScheduleConfig
from scaling_lab.data.config import DataConfig, SourceConfig
from scaling_lab.fitting.run import FitConfig
from scaling_lab.fitting.table import TableConfig
from scaling_lab.model.shapes import ModelConfig
from scaling_lab.planning.app import BudgetAppConfig
from scaling_lab.sweep.verify import VerifyConfig
from scaling_lab.tracking import LoggerConfig
from scaling_lab.typed import MISSING, defaults_of, field_types

CONFIGS = Path(CONFIGS_DIR)
GROUPS = {**SECTIONS, "data": DataConfig}  # the config groups of sl-train and their dataclasses


def _compose(name: str, *overrides: str) -> Any:
    with initialize_config_dir(config_dir=CONFIGS_DIR, version_base="1.3"):
        return compose(name, overrides=list(overrides))


def test_sl_train_default_config_is_the_dataclass_defaults_and_the_chosen_options():
    register_configs()
    register_resolvers()
    config = run_config_from_dict(OmegaConf.to_container(_compose("sl_train"), resolve=True))
    assert config.optim == OptimConfig() and config.schedule == ScheduleConfig()
    assert config.paths == PathsConfig() and config.debug == DebugConfig()
    assert config.logger == LoggerConfig(backend="wandb")
    assert config.budget == BudgetConfig(value=1e6)  # configs/budget/tokens.yaml: sl-train's own default budget
    assert config.model == ModelConfig(preset="n7k")
    sources = [SourceConfig(name=name, kind="embedded", domain=name, weight=0.5) for name in ("prose", "code")]
    assert config.data == DataConfig(name="embedded", sources=sources, sequence_length=128)
    run_level = {f.name for f in dataclasses.fields(RunConfig)} - set(GROUPS)
    defaults = RunConfig(**{name: getattr(config, name) for name in GROUPS})
    assert {name: getattr(config, name) for name in run_level} == {name: getattr(defaults, name) for name in run_level}


def test_sl_fit_default_config_is_the_fitting_dataclasses_defaults():
    cfg = _compose("sl_fit", "input=table.csv", "out=fits/x")
    assert fit_config(cfg) == (TableConfig(), FitConfig())
    assert logger_config(cfg) == LoggerConfig()


def test_sl_budget_default_config_is_budget_app_config():
    assert budget_config(_compose("sl_budget")) == BudgetAppConfig()


def test_sl_verify_default_config_is_verify_config():
    required = {"fit_json": "fits/x/fit.json", "store": "results/x", "out": "fits/x/verify"}
    cfg = compose_verify([f"{key}={value}" for key, value in required.items()])
    assert verify_config(cfg, []) == VerifyConfig(**required)


def test_sl_collect_default_config_is_collect_config():
    config = collect_config(_compose("sl_collect", "stores=[results/x]", "out=tables/x"))
    assert config == CollectConfig(stores=("results/x",), out="tables/x")
    assert collect_config(_compose("sl_collect", "stores=results/x", "out=tables/x")).stores == ("results/x",)


# ----------------------------------------------------------------------------------------------------------------
# No YAML file repeats a default


def _repeated_in_section(values: dict[str, Any], cls: type, where: str) -> list[str]:
    """The keys of a group option's ``values`` that repeat ``cls``'s default, looking into nested configs."""
    found = []
    defaults, hints = defaults_of(cls), field_types(cls)
    for key, value in values.items():
        hint, dotted = hints[key], f"{where}.{key}"
        item = (typing.get_args(hint) or (None,))[0]
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            found += _repeated_in_section(value, hint, dotted)
        elif typing.get_origin(hint) is list and dataclasses.is_dataclass(item):
            found += [k for i, v in enumerate(value) for k in _repeated_in_section(v, item, f"{dotted}[{i}]")]
        elif defaults[key] != MISSING and value == defaults[key]:
            found.append(f"{dotted}={value!r}")
    return found


def _repeated_in_node(values: dict[str, Any], node: dict[str, Any], where: str) -> list[str]:
    """The keys of a command's YAML ``values`` that repeat its registered schema node."""
    found = []
    for key, value in values.items():
        dotted = f"{where}.{key}" if where else key
        if key in ("defaults", "hydra") or key not in node:
            continue
        if isinstance(value, dict) and isinstance(node[key], dict):
            found += _repeated_in_node(value, node[key], dotted)
        elif node[key] != MISSING and value == node[key]:
            found.append(f"{dotted}={value!r}")
    return found


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_no_group_option_repeats_a_dataclass_default(group):
    for path in sorted((CONFIGS / group).glob("*.yaml")):
        values = yaml.safe_load(path.read_text()) or {}
        assert _repeated_in_section(values, GROUPS[group], group) == [], path


@pytest.mark.parametrize("name", sorted(set(SCHEMAS) - {"sl_train"}))
def test_no_command_config_repeats_a_dataclass_default(name):
    node = SCHEMAS[name]()
    values = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text()) or {}
    assert _repeated_in_node(values, node, "") == []
    if name == "sl_fit":
        for path in sorted((CONFIGS / "fit").glob("*.yaml")):
            assert _repeated_in_node(yaml.safe_load(path.read_text()) or {}, node["fit"], "fit") == [], path


def test_no_run_level_setting_in_sl_train_yaml_repeats_run_config():
    values = yaml.safe_load((CONFIGS / "sl_train.yaml").read_text())
    run_level = {key: value for key, value in values.items() if key not in ("defaults", "hydra", *GROUPS)}
    assert _repeated_in_section(run_level, RunConfig, "sl_train") == []
