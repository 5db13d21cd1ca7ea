"""Golden losses: the first 20 training losses of a seeded tiny CPU run, against a stored file.

A change to the model, init, data stream, optimizer, schedule or rules moves these numbers; if the change is
intended, regenerate the file with ``python tests/train/test_golden.py`` and say why in the commit.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest
import torch

from scaling_lab.config.schema import run_config_from_dict
from scaling_lab.data import default_cache_dir, prepare_data
from scaling_lab.tracking import Tracker
from scaling_lab.train import loop
from scaling_lab.train.plan import make_plan

GOLDEN = Path(__file__).parents[1] / "assets" / "golden_losses.json"
# Same machine: bit-identical. Across CPUs / BLAS builds, fp32 reductions differ in the last bits and the
# differences grow over 20 AdamW steps; 1e-4 relative still catches any real change (a changed init or LR
# moves step-20 losses by > 1e-2).
RELATIVE_TOLERANCE = 1e-4
# The fast paths against the plain ones, in the same process: fused AdamW against its Python loop, the compiled
# model against the eager one. They reorder fp32 arithmetic only; measured 4e-7 (fused) and 1.4e-7 (compiled)
# over the 20 steps, so 1e-5 leaves room for other CPUs while any real difference (> 1e-3) fails.
FAST_PATH_TOLERANCE = 1e-5
GOLDEN_CONFIG = {
    "model": {"preset": "n3k"},
    "data": {
        "name": "embedded",
        "sources": [
            {"name": "prose", "kind": "embedded", "domain": "prose", "weight": 0.5},
            {"name": "code", "kind": "embedded", "domain": "code", "weight": 0.5},
        ],
        "sequence_length": 32,
        "eval_bytes": 1024,
    },
    "optim": {"batch_tokens": 256},  # lr, β2 and warmup from the per-size rules: they are under test too
    "schedule": {"kind": "cosine"},
    "budget": {"kind": "tokens", "value": 5120},  # 20 steps
    "logger": {"backend": "none"},
    "debug": {"progress": False},
    "checkpoint_every_tokens": 0,
    "seed": 1234,
    "device": "cpu",
}


class LossLog(Tracker):
    """The null tracker, keeping the training losses it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []

    def log(self, metrics: dict, step: int) -> None:
        if "train/loss" in metrics:
            self.losses.append(metrics["train/loss"])


def golden_run(tmp_path: Path, **overrides) -> tuple[list[float], dict]:
    torch.set_num_threads(1)
    config = run_config_from_dict({**GOLDEN_CONFIG, **overrides, "paths": {"results_dir": str(tmp_path)}})
    data = prepare_data(config.data, default_cache_dir())
    plan = make_plan(config, vocab_size=data.vocab_size)
    log = LossLog()
    loop.train(config, plan, data, run_dir=tmp_path, tracker=log, device=torch.device("cpu"))
    return log.losses, {"lr": plan.lr, "beta2": plan.beta2, "warmup_steps": plan.warmup_steps, "steps": plan.steps}


def test_first_twenty_losses_match_the_golden_file(tmp_path: Path) -> None:
    golden = json.loads(GOLDEN.read_text())
    losses, plan = golden_run(tmp_path)
    assert plan == pytest.approx(golden["plan"])
    assert len(losses) == len(golden["losses"]) == 20
    assert losses == pytest.approx(golden["losses"], rel=RELATIVE_TOLERANCE)
    assert losses[-1] < losses[0]


@pytest.mark.parametrize(
    ("fast", "plain"),
    [
        ({}, {"optim": {**GOLDEN_CONFIG["optim"], "fused": False}}),  # the default fused AdamW / its Python loop
        ({"compile": True}, {}),  # torch.compile (inductor's C++ backend) / eager
    ],
    ids=["fused-adamw", "compile"],
)
def test_fast_paths_match_the_plain_ones(tmp_path: Path, fast: dict, plain: dict) -> None:
    fast_losses, _ = golden_run(tmp_path / "fast", **fast)
    plain_losses, _ = golden_run(tmp_path / "plain", **plain)
    assert fast_losses == pytest.approx(plain_losses, rel=FAST_PATH_TOLERANCE)
    assert fast_losses != pytest.approx(golden_losses_of_a_changed_run(tmp_path), rel=FAST_PATH_TOLERANCE)


class StepLog(LossLog):
    """The losses and the steps they were logged at."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[int] = []

    def log(self, metrics: dict, step: int) -> None:
        super().log(metrics, step)
        if "train/loss" in metrics:
            self.steps.append(step)


def test_a_long_run_sends_its_tracker_the_mean_loss_of_each_window(tmp_path: Path, monkeypatch) -> None:
    """Past TRACKED_TRAIN_POINTS steps, each train/loss point is the mean over the steps since the last one."""
    every_step, _ = golden_run(tmp_path / "all")
    monkeypatch.setattr(loop, "TRACKED_TRAIN_POINTS", 6)  # 20 steps → at most 6 points: one every 4 steps
    config = run_config_from_dict({**GOLDEN_CONFIG, "paths": {"results_dir": str(tmp_path / "windows")}})
    data = prepare_data(config.data, default_cache_dir())
    log = StepLog()
    loop.train(config, make_plan(config, vocab_size=data.vocab_size), data, run_dir=tmp_path / "windows",
               tracker=log, device=torch.device("cpu"))  # fmt: skip
    assert log.steps == [4, 8, 12, 16, 20]
    windows = [every_step[start:end] for start, end in zip([0, *log.steps[:-1]], log.steps, strict=True)]
    assert log.losses == pytest.approx([sum(w) / len(w) for w in windows], rel=1e-12)


def test_a_diverging_run_first_sends_the_steps_before_the_divergence(tmp_path: Path, monkeypatch) -> None:
    every_step, _ = golden_run(tmp_path / "all")
    monkeypatch.setattr(loop, "TRACKED_TRAIN_POINTS", 6)  # a point every 4 steps
    # the first step whose loss is 5 % above the best before it: a 1.05 factor calls it diverged there
    first = next(step + 1 for step in range(1, len(every_step)) if every_step[step] > 1.05 * min(every_step[:step]))
    assert (first - 1) % 4 != 0  # the steps since the last regular point are a partial window
    config = run_config_from_dict(
        {**GOLDEN_CONFIG, "divergence_factor": 1.05, "paths": {"results_dir": str(tmp_path / "diverging")}}
    )
    data = prepare_data(config.data, default_cache_dir())
    log = StepLog()
    progress = loop.train(config, make_plan(config, vocab_size=data.vocab_size), data, run_dir=tmp_path / "diverging",
                          tracker=log, device=torch.device("cpu"))  # fmt: skip
    assert progress.diverged_at_step == first
    regular = list(range(4, first, 4))
    assert log.steps == [*regular, first - 1]  # the last steps are sent although no regular point came after them
    bounds = [0, *regular, first - 1]
    means = [sum(every_step[a:b]) / (b - a) for a, b in itertools.pairwise(bounds)]
    assert log.losses == pytest.approx(means, rel=1e-12)


def golden_losses_of_a_changed_run(tmp_path: Path) -> list[float]:
    """The losses of a run whose learning rate differs by 1 %: what a real difference looks like at this length."""
    plan_lr = json.loads(GOLDEN.read_text())["plan"]["lr"]
    losses, _ = golden_run(tmp_path / "changed", optim={**GOLDEN_CONFIG["optim"], "lr": 1.01 * plan_lr})
    return losses


if __name__ == "__main__":  # regenerate: python tests/train/test_golden.py
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        losses, plan = golden_run(Path(folder))
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    note = (
        "first 20 training losses of tests/train/test_golden.py's run (n3k, seed 1234, CPU fp32, fused AdamW, 1 thread)"
    )
    GOLDEN.write_text(json.dumps({"note": note, "torch": torch.__version__, "plan": plan, "losses": losses}, indent=1))
    print(f"wrote {GOLDEN}", file=sys.stderr)
