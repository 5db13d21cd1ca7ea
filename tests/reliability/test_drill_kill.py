"""The kill drill (scripts/drill_kill.py): SIGKILLed sweeps relaunched to completion lose and double nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parents[2] / "scripts" / "drill_kill.py"


def drill_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("drill_kill", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check(figures: dict, kills: int) -> None:
    assert figures["kills"] == kills, figures  # every launch was still running when its kill came
    assert figures["points"] == 4 and figures["recorded"] == 4, figures
    assert figures["duplicates"] == 0 and figures["lost"] == 0 and figures["status_differences"] == 0, figures
    assert figures["checkpoints_left"] == 0 and figures["final_exit_status"] == 0, figures
    assert figures["largest_loss_difference"] <= 1e-4, figures


def test_a_sweep_killed_three_times_then_relaunched_records_every_point_once_with_the_same_losses(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    figures = drill_module().main(["--kills", "3", "--out", str(tmp_path)])
    check(figures, 3)
    assert sum(figures["interrupted_points_per_kill"]) >= 1, figures  # at least one kill landed mid-training
    assert '"duplicates": 0' in capsys.readouterr().out


@pytest.mark.slow
def test_the_longer_drill_six_kills_over_a_wider_window(tmp_path: Path) -> None:
    figures = drill_module().main(
        ["--kills", "6", "--seed", "1", "--max-steps", "6", "--budgets", "2e4,4e4,6e4,8e4", "--out", str(tmp_path)]
    )
    check(figures, 6)
