import pytest
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationResolutionError

from scaling_lab.cli.compose import register_resolvers

register_resolvers()


def test_pick_reads_one_point_of_an_explicit_grid():
    cfg = OmegaConf.create(
        {
            "grid": {"point": 1, "points": [["n1k", 1e11], ["n3k", 3e11]]},
            "preset": "${sl.pick:${grid.points},${grid.point},0}",
            "flops": "${sl.pick:${grid.points},${grid.point},1}",
        }
    )
    assert (cfg.preset, cfg.flops) == ("n3k", 3e11)


def test_pick_outside_the_list_names_the_field():
    cfg = OmegaConf.create(
        {"grid": {"point": 5, "points": [["n1k", 1e11]]}, "p": "${sl.pick:${grid.points},${grid.point},0}"}
    )
    # OmegaConf wraps the resolver's ConfigError; sl-plan and sl-train print its message as one line.
    with pytest.raises(InterpolationResolutionError, match=r"grid.point=5 is outside grid.points \(0 to 0\)"):
        _ = cfg.p
