"""``sl-budget``: N_opt, D_opt, tokens per parameter and predicted loss for a budget, from a law.

sl-budget flops=5.88e21 law=besiroglu2024
sl-budget n_params=7e9 law=outputs/fit/fit.json inference_tokens=2e12 reference_models=true
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from scaling_lab.cli.app import hydra_app
from scaling_lab.cli.fit import build
from scaling_lab.planning.app import BudgetAppConfig, MoEOptions, run_budget


def to_config(cfg: DictConfig) -> BudgetAppConfig:
    """The typed config of a composed ``sl_budget`` config."""
    values = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(values, dict)
    values["moe"] = build(MoEOptions, values.get("moe"), "moe")
    return build(BudgetAppConfig, values, "sl_budget")


@hydra_app("sl_budget")
def main(cfg: DictConfig) -> None:
    print(run_budget(to_config(cfg)))


if __name__ == "__main__":
    main()
