"""The leaf: one run trained from explicit arguments returns its record and changes nothing around it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from scaling_lab.data import prepare_data
from scaling_lab.results import RECORD_FILENAME, paths_named
from scaling_lab.sweep.sweep import run_point
from scaling_lab.tracking import Tracker
from scaling_lab.train.checkpoint import CHECKPOINT_NAME
from scaling_lab.train.plan import make_plan
from scaling_lab.train.run import run


class SummaryLog(Tracker):
    """The null tracker, keeping the summaries it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.summaries: list[dict] = []

    def summary(self, values: dict) -> None:
        self.summaries.append(dict(values))


def _run(config, run_dir: Path, tracker: Tracker):
    data = prepare_data(config.data, config.paths.resolved_cache_dir())
    plan = make_plan(config, vocab_size=data.vocab_size)
    return run(config, plan, data, device=torch.device("cpu"), tracker=tracker, run_dir=run_dir)


def test_a_run_returns_the_record_the_sweep_writes_and_leaves_threads_and_store_alone(tiny_config, tmp_path) -> None:
    config = tiny_config(results=tmp_path / "leaf", threads=2)
    torch.set_num_threads(1)
    log = SummaryLog()
    record = _run(config, tmp_path / "run", log)
    assert torch.get_num_threads() == 1  # the caller's threads: the leaf sets none
    assert not paths_named(tmp_path, RECORD_FILENAME)  # the sweep writes records, not the leaf
    assert record.status == "finished" and record.run_id == config.run_id()
    assert log.summaries[0]["steps"] == 40 and log.summaries[-1]["status"] == "finished"
    assert log.summaries[-1]["loss"] == record.final_loss
    swept = run_point(tiny_config(results=tmp_path / "sweep")).record  # threads=1: the same arithmetic
    assert swept is not None
    assert record.final_loss == pytest.approx(swept.final_loss, abs=1e-6)
    assert [p.loss for p in record.curve] == pytest.approx([p.loss for p in swept.curve], abs=1e-6)


def test_a_failing_run_raises_to_its_caller_and_keeps_its_checkpoint(tiny_config, tmp_path) -> None:
    config = tiny_config(debug={"crash_at_step": 20, "progress": False})
    with pytest.raises(RuntimeError, match=r"debug\.crash_at_step=20"):
        _run(config, tmp_path / "run", Tracker())
    assert (tmp_path / "run" / CHECKPOINT_NAME).exists()


def test_every_point_scores_each_eval_set_and_the_union(tiny_config, tmp_path) -> None:
    config = tiny_config(results=tmp_path / "leaf")
    data = prepare_data(config.data, config.paths.resolved_cache_dir())
    record = _run(config, tmp_path / "run", Tracker())
    assert record.eval_suite_hash == data.eval_suite_hash
    for point in [*record.points, *record.curve]:
        assert set(point.losses) == set(point.bpb) == {"prose", "code", "all"}
        assert point.losses["all"] == point.loss
        # the union lies between the sets (a token-weighted mean), and so does its bits per byte
        assert min(point.losses["prose"], point.losses["code"]) <= point.loss <= max(point.losses.values())
        assert min(point.bpb["prose"], point.bpb["code"]) <= point.bpb["all"] <= max(point.bpb.values())
    # byte tokenizer: bits per byte = nats per token / ln 2 × tokens per byte, and separators add tokens, not bytes
    final = record.points[-1]
    for name, held in ((held.name, held) for held in data.eval_suite):
        tokens_per_byte = held.predicted_tokens / held.window_bytes.sum()
        assert final.bpb[name] == pytest.approx(final.losses[name] / math.log(2) * tokens_per_byte, rel=1e-9)
