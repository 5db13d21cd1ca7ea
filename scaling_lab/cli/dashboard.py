"""sl-dashboard: a wandb workspace or report for one sweep or several side by side (scaling_lab.dashboards).

    sl-dashboard entity=ENTITY project=PROJECT sweeps=[SWEEP,...] [domains=[prose,code]] [kind=workspace|report]
                 [title=...] [out=FILE] [save=true]

``out=FILE`` writes the specification as JSON (offline); ``save=true`` saves the dashboard to wandb (online, with
WANDB_API_KEY or ``wandb login``).
"""

from __future__ import annotations

from omegaconf import DictConfig

from scaling_lab.cli.app import hydra_app, resolved
from scaling_lab.dashboards import DashboardConfig, run_dashboard
from scaling_lab.typed import from_mapping


def run(cfg: DictConfig) -> None:
    config = from_mapping(DashboardConfig, resolved(cfg), "", check_types=True)
    for line in run_dashboard(config):
        print(line)


@hydra_app("sl_dashboard")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
