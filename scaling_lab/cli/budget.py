"""``sl-budget``: N_opt, D_opt, tokens per parameter and predicted loss for a budget, from a law.

    sl-budget flops=5.9e21 law=besiroglu2024
    sl-budget n_params=7e9 law=outputs/fit/fit.json inference_tokens=2e12 reference_models=true
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf

from scaling_lab.errors import ConfigError, exit_on_user_error
from scaling_lab.planning.app import BudgetAppConfig, MoEOptions, run_budget


def to_config(cfg: DictConfig) -> BudgetAppConfig:
    """The typed config of a composed ``sl_budget`` config (unknown keys named in the error)."""
    values = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(values, dict)
    moe = values.pop("moe", None) or {}
    try:
        return BudgetAppConfig(**values, moe=MoEOptions(**moe))
    except TypeError as error:  # an unexpected key: dataclasses name it in the message
        raise ConfigError(f"sl_budget: {error}; see configs/sl_budget.yaml for the keys") from error


@hydra.main(version_base="1.3", config_path="../../configs", config_name="sl_budget")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    print(run_budget(to_config(cfg)))


if __name__ == "__main__":
    main()
