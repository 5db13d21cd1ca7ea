"""sl-collect: one table (Parquet and CSV) from one or several sweeps' results stores."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from scaling_lab.cli.app import hydra_app, resolved
from scaling_lab.cli.schemas import CollectConfig
from scaling_lab.errors import ConfigError
from scaling_lab.sweep.collect import collect
from scaling_lab.typed import from_mapping


def to_config(cfg: DictConfig) -> CollectConfig:
    """The typed config of a composed ``sl_collect`` config; one store may be given without brackets."""
    values = resolved(cfg)
    values.pop("hydra", None)
    if not isinstance(values["stores"], list):
        values["stores"] = [values["stores"]]
    if not all(isinstance(store, str) for store in values["stores"]):
        raise ConfigError(f"stores={cfg.stores}: give results directories, e.g. stores=[results/quickstart]")
    return from_mapping(CollectConfig, values, "", check_types=True)


def run(cfg: DictConfig) -> None:
    config = to_config(cfg)
    written = collect([Path(s) for s in config.stores], Path(config.out), statuses=config.statuses)
    for kind, path in written.items():
        print(f"{kind}: {path}")


@hydra_app("sl_collect")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
