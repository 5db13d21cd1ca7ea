"""Golden losses: the first 20 training losses of a seeded tiny CPU run, against a stored file.

A change to the model, init, data stream, optimizer, schedule or rules moves these numbers; if the change is
intended, regenerate the file with ``python tests/train/test_golden.py`` and say why in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from scaling_lab.config.schema import run_config_from_dict
from scaling_lab.data import default_cache_dir, prepare_data
from scaling_lab.tracking import Tracker
from scaling_lab.train.loop import train
from scaling_lab.train.plan import make_plan

GOLDEN = Path(__file__).parents[1] / "assets" / "golden_losses.json"
# Same machine: bit-identical. Across CPUs / BLAS builds, fp32 reductions differ in the last bits and the
# differences grow over 20 AdamW steps; 1e-4 relative still catches any real change (a changed init or LR
# moves step-20 losses by > 1e-2).
RELATIVE_TOLERANCE = 1e-4
GOLDEN_CONFIG = {
    "model": {"preset": "n3k"},
    "data": {
        "name": "embedded",
        "sources": [
            {"name": "prose", "kind": "embedded", "domain": "prose", "weight": 0.5},
            {"name": "code", "kind": "embedded", "domain": "code", "weight": 0.5},
        ],
        "sequence_length": 32,
        "eval_tokens": 1024,
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


def golden_run(tmp_path: Path) -> tuple[list[float], dict]:
    torch.set_num_threads(1)
    config = run_config_from_dict({**GOLDEN_CONFIG, "paths": {"results_dir": str(tmp_path)}})
    data = prepare_data(config.data, default_cache_dir())
    plan = make_plan(config, vocab_size=data.vocab_size)
    log = LossLog()
    train(config, plan, data, run_dir=tmp_path, tracker=log, device=torch.device("cpu"))
    return log.losses, {"lr": plan.lr, "beta2": plan.beta2, "warmup_steps": plan.warmup_steps, "steps": plan.steps}


def test_first_twenty_losses_match_the_golden_file(tmp_path: Path) -> None:
    golden = json.loads(GOLDEN.read_text())
    losses, plan = golden_run(tmp_path)
    assert plan == pytest.approx(golden["plan"])
    assert len(losses) == len(golden["losses"]) == 20
    assert losses == pytest.approx(golden["losses"], rel=RELATIVE_TOLERANCE)
    assert losses[-1] < losses[0]


if __name__ == "__main__":  # regenerate: python tests/train/test_golden.py
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        losses, plan = golden_run(Path(folder))
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    note = "first 20 training losses of tests/train/test_golden.py's run (n3k, seed 1234, CPU fp32, 1 thread)"
    GOLDEN.write_text(json.dumps({"note": note, "torch": torch.__version__, "plan": plan, "losses": losses}, indent=1))
    print(f"wrote {GOLDEN}", file=sys.stderr)
