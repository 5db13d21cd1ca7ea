"""sl-collect: one table (Parquet and CSV) from one or several sweeps' results stores."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, ListConfig

from scaling_lab.cli import CONFIGS_DIR
from scaling_lab.errors import ConfigError, exit_on_user_error
from scaling_lab.sweep.collect import collect


@exit_on_user_error
def run(cfg: DictConfig) -> None:
    stores = list(cfg.stores) if isinstance(cfg.stores, ListConfig) else [cfg.stores]
    if not all(isinstance(store, str) for store in stores):
        raise ConfigError(f"stores={cfg.stores}: give results directories, e.g. stores=[results/quickstart]")
    written = collect([Path(s) for s in stores], Path(cfg.out), statuses=tuple(cfg.statuses))
    for kind, path in written.items():
        print(f"{kind}: {path}")


@hydra.main(version_base="1.3", config_path=CONFIGS_DIR, config_name="sl_collect")
def main(cfg: DictConfig) -> None:
    run(cfg)
if __name__ == "__main__":
    main()
