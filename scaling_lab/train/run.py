"""One training run, a leaf of explicit arguments: config, plan, data, device, tracker and folder in, its record out.

    record = run(config, plan, data, device=device, tracker=tracker, run_dir=folder)

No lock, no skipping, no record written and no global state (the CPU threads are the caller's): the sweep
(:mod:`scaling_lab.sweep.sweep`) decides whether a grid point trains, prepares its data and plan, claims its device,
opens its tracker, and writes its record through its life (running, then finished, diverged or failed).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import torch

from scaling_lab.config.schema import RunConfig
from scaling_lab.data import TokenData
from scaling_lab.model.hardware import mfu
from scaling_lab.results import CurvePoint, RunPoint, RunRecord
from scaling_lab.results.provenance import git_commit, library_versions, run_config_hash, utc_now
from scaling_lab.tracking import Tracker
from scaling_lab.train.distributed import SINGLE, Ranks
from scaling_lab.train.loop import train
from scaling_lab.train.plan import TrainPlan
from scaling_lab.train.progress import Progress


def run(config: RunConfig, plan: TrainPlan, data: TokenData, *, device: torch.device, tracker: Tracker,
        run_dir: Path, created_at: str | None = None, ranks: Ranks = SINGLE) -> RunRecord:  # fmt: skip
    """Train (or resume, from the checkpoint in ``run_dir``) one run; returns its record, finished or diverged.

    An exception from training propagates: the caller records the run as failed. ``created_at``: when the grid point
    started (the time its running record gives); now by default. The record's wall time is this call's. With
    several ``ranks`` every rank calls it with its own device; rank 0's tracker and record are the run's."""
    created_at = created_at or utc_now()
    started = time.perf_counter()
    data.epochs(plan.n_tokens)  # warns when the budget repeats data more than 4 epochs
    tracker.summary(plan_summary(plan))
    progress = train(config, plan, data, run_dir=run_dir, tracker=tracker, device=device, ranks=ranks)
    status = "diverged" if progress.diverged_at_step is not None else "finished"
    record = make_record(config, plan, data, progress, status=status, created_at=created_at,
                         wall_time_s=time.perf_counter() - started, device=device,
                         world_size=ranks.world_size)  # fmt: skip
    tracker.summary(final_summary(record))
    return record


def plan_summary(plan: TrainPlan) -> dict[str, Any]:
    """What the tracker's summary shows of a run before it trains: N, planned D, steps, LR and batch."""
    return {"n_params_total": plan.n_params_total, "n_params_nonembed": plan.n_params_nonembed,
            "n_tokens_planned": plan.n_tokens_planned, "steps": plan.steps, "lr": plan.lr,
            "batch_tokens": plan.tokens_per_step}  # fmt: skip


def final_summary(record: RunRecord) -> dict[str, Any]:
    """What the tracker's summary shows of a run that ended: its status, final loss, realized D and C, throughput."""
    last = record.points[-1] if record.points else None
    return {"status": record.status, "loss": record.final_loss, "n_tokens": record.n_tokens,
            "flops_6nd": last.flops_6nd if last else None, "flops_exact": last.flops_exact if last else None,
            "tokens_per_second": record.tokens_per_second}  # fmt: skip


def device_name(device: torch.device) -> str:
    """The accelerator's marketing name (looked up in the peak table) or ``cpu (<arch>)``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({platform.machine()})"


def resolved_config(config: RunConfig, plan: TrainPlan) -> dict[str, Any]:
    """The config with every rule-derived value filled in (what the run actually used)."""
    values = config.to_dict()
    values["optim"].update(lr=plan.lr, beta2=plan.beta2, batch_tokens=plan.tokens_per_step,
                           micro_batch_sequences=plan.micro_batch_sequences)  # fmt: skip
    values["schedule"]["warmup_tokens"] = plan.warmup_tokens
    return values


def make_record(config: RunConfig, plan: TrainPlan, data: TokenData, progress: Progress, *, status: str,
                created_at: str, wall_time_s: float, device: torch.device,
                world_size: int = 1) -> RunRecord:  # fmt: skip
    """The run record for the current progress (running, finished, diverged or failed); ``world_size`` processes
    trained it (the throughput is theirs together, the MFU each device's)."""
    tokens_per_second = progress.trained_tokens / progress.train_seconds if progress.train_seconds else 0.0
    flops_per_second = tokens_per_second * plan.flops_per_token_exact
    name, stored_config = device_name(device), resolved_config(config, plan)
    return RunRecord(
        run_id=config.run_id(), sweep=config.sweep, status=status, reason=progress.reason,
        config=stored_config, config_hash=run_config_hash(stored_config), seed=config.seed,
        data_mix=data.mix_name, data_mix_hash=data.mix_hash, eval_suite_hash=data.eval_suite_hash,
        n_params_total=plan.n_params_total,
        n_params_nonembed=plan.n_params_nonembed, tied_embeddings=config.model.tie_embeddings,
        n_params_active=plan.n_params_active, n_params_active_nonembed=plan.n_params_active_nonembed,
        n_experts=plan.shape.n_experts, experts_per_token=plan.shape.experts_per_token,
        expert_ffn_size=plan.shape.expert_ffn_size, granularity=plan.shape.granularity,
        points=[RunPoint(**p) for p in progress.points], n_tokens_planned=round(plan.n_tokens_planned),
        n_tokens=progress.points[-1]["n_tokens"] if progress.points else plan.tokens_after(progress.step),
        curve=[CurvePoint(**p) for p in progress.curve], tokens_per_second=tokens_per_second,
        flops_per_second=flops_per_second, mfu=mfu(flops_per_second / world_size, name), wall_time_s=wall_time_s,
        device=name,
        versions=library_versions(), git_commit=git_commit(), diverged_at_step=progress.diverged_at_step,
        created_at=created_at, finished_at=None if status == "running" else utc_now(), world_size=world_size,
    )  # fmt: skip
