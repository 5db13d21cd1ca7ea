"""sl-collect: one table (Parquet and CSV) from one or several sweeps' results stores."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, ListConfig

from scaling_lab.cli.app import hydra_app
from scaling_lab.errors import ConfigError
from scaling_lab.sweep.collect import collect


def run(cfg: DictConfig) -> None:
    stores = list(cfg.stores) if isinstance(cfg.stores, ListConfig) else [cfg.stores]
    if not all(isinstance(store, str) for store in stores):
        raise ConfigError(f"stores={cfg.stores}: give results directories, e.g. stores=[results/quickstart]")
    written = collect([Path(s) for s in stores], Path(cfg.out), statuses=tuple(cfg.statuses))
    for kind, path in written.items():
        print(f"{kind}: {path}")


@hydra_app("sl_collect")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
