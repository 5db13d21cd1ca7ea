import pytest
from omegaconf import OmegaConf

from scaling_lab.cli.compose import register_resolvers
from scaling_lab.errors import ConfigError
from scaling_lab.sweep.grids import isoflop_target_n

register_resolvers()


def test_isoflop_sizes_move_with_the_budget_by_the_exponent_and_step_by_the_ratio():
    assert isoflop_target_n(1e12, 0, 7000, 1e12, 0.5, 2) == pytest.approx(7000)
    assert isoflop_target_n(4e12, 0, 7000, 1e12, 0.5, 2) == pytest.approx(14000)
    assert isoflop_target_n(1e12, -2, 7000, 1e12, 0.5, 2) == pytest.approx(1750)


def test_resolver_in_a_config():
    cfg = OmegaConf.create(
        {
            "budget": {"value": 4e12},
            "grid": {"rank": 1, "center_n": 1000, "center_flops": 1e12, "exponent": 0.5, "ratio": 3},
            "n": "${sl.isoflop_n:${budget.value},${grid.rank},${grid.center_n},${grid.center_flops},"
            "${grid.exponent},${grid.ratio}}",
        }
    )
    assert cfg.n == pytest.approx(6000)


def test_non_positive_budget_names_the_field():
    with pytest.raises(ConfigError, match=r"budget.value=-1.0 must be > 0"):
        isoflop_target_n(-1.0, 0, 7000, 1e12, 0.5, 2)
