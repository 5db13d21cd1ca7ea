"""One grid point end to end: skip if finished, lock, resume, train, write the record, close the tracker.

``sl-train`` calls :func:`run_point` once per Hydra job. A relaunched sweep therefore skips finished points,
resumes interrupted ones from their checkpoint, and never trains one point in two processes at once.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout

from scaling_lab.config.schema import RunConfig
from scaling_lab.data import prepare_data
from scaling_lab.errors import TableError
from scaling_lab.model.hardware import mfu
from scaling_lab.redact import scrub_text
from scaling_lab.results import CurvePoint, RunPoint, RunRecord, read_record, record_path, run_dir, write_record
from scaling_lab.results.provenance import git_commit, library_versions, run_config_hash, utc_now
from scaling_lab.results.store import SkippedRecordsWarning, set_aside
from scaling_lab.tracking import open_tracker, quantity_tags
from scaling_lab.train import checkpoint
from scaling_lab.train.loop import train
from scaling_lab.train.placement import cpu_threads_per_job, footprint_of, placed_device
from scaling_lab.train.plan import TrainPlan, make_plan
from scaling_lab.train.preflight import check_can_start, check_fits_memory
from scaling_lab.train.progress import Progress

LOCK_NAME = "run.lock"
# Records that end a grid point: a relaunch skips them. A diverged run would diverge again from the same config;
# failed and running (killed) ones are retried, from their checkpoint when there is one.
DONE = ("finished", "diverged")


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What happened to a grid point."""

    action: str
    """trained, resumed, skipped-finished, skipped-diverged, skipped-failed, or skipped-locked."""
    record: RunRecord | None
    """The record written (None when skipped)."""


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


def make_record(config: RunConfig, plan: TrainPlan, data: Any, progress: Progress, *, status: str,
                created_at: str, wall_time_s: float, device: torch.device) -> RunRecord:  # fmt: skip
    """The run record for the current progress."""
    tokens_per_second = progress.trained_tokens / progress.train_seconds if progress.train_seconds else 0.0
    flops_per_second = tokens_per_second * plan.flops_per_token_exact
    name, stored_config = device_name(device), resolved_config(config, plan)
    return RunRecord(
        run_id=config.run_id(), sweep=config.sweep, status=status, reason=progress.reason,
        config=stored_config, config_hash=run_config_hash(stored_config), seed=config.seed,
        data_mix=data.mix_name, data_mix_hash=data.mix_hash, eval_suite_hash=data.eval_suite_hash,
        n_params_total=plan.n_params_total,
        n_params_nonembed=plan.n_params_nonembed, tied_embeddings=config.model.tie_embeddings,
        points=[RunPoint(**p) for p in progress.points], n_tokens_planned=round(plan.n_tokens_planned),
        n_tokens=progress.points[-1]["n_tokens"] if progress.points else plan.tokens_after(progress.step),
        curve=[CurvePoint(**p) for p in progress.curve], tokens_per_second=tokens_per_second,
        flops_per_second=flops_per_second, mfu=mfu(flops_per_second, name), wall_time_s=wall_time_s, device=name,
        versions=library_versions(), git_commit=git_commit(), diverged_at_step=progress.diverged_at_step,
        created_at=created_at, finished_at=None if status == "running" else utc_now(),
    )  # fmt: skip


def set_threads(config: RunConfig, jobs_at_once: int) -> int:
    """torch CPU threads: config.threads, else all cores divided by the ``jobs_at_once`` a parallel launcher runs."""

    threads = config.threads or cpu_threads_per_job(jobs_at_once)
    torch.set_num_threads(threads)
    return threads


def run_point(config: RunConfig, *, jobs_at_once: int = 1) -> Outcome:
    """Train one grid point unless it is finished or being trained elsewhere; never raises for a failed run (a
    ScalingLabError means it could not start: nothing was created).

    ``jobs_at_once``: how many grid points the launcher runs at once on this host (sl-train reads it from Hydra's
    launcher); they divide the CPU cores between them and, on a CUDA host, claim shares of its GPUs."""
    check_can_start(config)
    root, run_id = Path(config.paths.results_dir), config.run_id()
    folder, path = run_dir(root, config.sweep, run_id), record_path(root, config.sweep, run_id)
    if (skipped := _skip_if_ended(config, path, locked=False)) is not None:
        return skipped
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(folder / LOCK_NAME, timeout=0):
            # Read again under the lock: another launch may have ended the point since the first read.
            if (skipped := _skip_if_ended(config, path, locked=True)) is not None:
                return skipped
            set_threads(config, jobs_at_once)
            data = prepare_data(config.data, config.paths.resolved_cache_dir())
            plan = make_plan(config, vocab_size=data.vocab_size)
            check_fits_memory(config, plan)  # again: a pretrained hf tokenizer's vocabulary is known only now
            # the plan sizes the device share (jobs_per_device=auto packs small runs onto one GPU)
            footprint = footprint_of(plan)
            with placed_device(config.device, jobs_at_once=jobs_at_once, jobs_per_device=config.jobs_per_device,
                               footprint=footprint) as device:  # fmt: skip
                return _train_locked(config, plan, data, folder, device)
    except Timeout:
        print(f"skip {config.sweep}/{run_id}: another launch holds {folder / LOCK_NAME}")
        return Outcome(action="skipped-locked", record=None)


def _skip_if_ended(config: RunConfig, path: Path, *, locked: bool) -> Outcome | None:
    """The skip of a point whose record says it ended (finished, diverged, or failed unless retry_failed); None to
    train it.

    A record that cannot be used (unreadable, invalid, or another grid point's: results.store.read_record) does not
    end the point. The launch that holds the point's lock renames it to run.json.rejected (kept to look at, never
    overwritten) with one warning, and trains the point.
    """
    if not os.path.lexists(path):
        return None
    where = f"{config.sweep}/{config.run_id()}"
    try:
        status = read_record(path).status
    except TableError as error:
        if locked:
            aside = set_aside(path)
            warnings.warn(f"{error}; moved it to {aside.name} and training {where} again", SkippedRecordsWarning,
                          stacklevel=2)  # fmt: skip
        return None
    if status in DONE:
        print(f"skip {where}: {status} record at {path} (delete it to train again)")
        return Outcome(action=f"skipped-{status}", record=None)
    if status == "failed" and not config.retry_failed:
        print(f"skip {where}: failed record at {path} (retry_failed=true resumes it)")
        return Outcome(action="skipped-failed", record=None)
    return None


def _train_locked(config: RunConfig, plan: TrainPlan, data: Any, folder: Path, device: torch.device) -> Outcome:
    data.epochs(plan.n_tokens)  # warns when the budget repeats data more than 4 epochs
    resumed = (folder / checkpoint.CHECKPOINT_NAME).exists()
    created_at, started = utc_now(), time.perf_counter()
    record_of = lambda progress, status: make_record(  # noqa: E731
        config, plan, data, progress, status=status, created_at=created_at,
        wall_time_s=time.perf_counter() - started, device=device)  # fmt: skip
    write_record(record_of(Progress(), "running"), config.paths.results_dir)
    summary = {"n_params_total": plan.n_params_total, "n_params_nonembed": plan.n_params_nonembed,
               "n_tokens_planned": plan.n_tokens_planned, "steps": plan.steps, "lr": plan.lr,
               "batch_tokens": plan.tokens_per_step}  # fmt: skip
    logger = config.logger if config.logger.dir != "." else dataclasses.replace(config.logger, dir=str(folder))
    # Tags N, D, C to filter a sweep's runs in wandb: N = total parameters (the N records and fits use by default
    # at this scale: Pearce & Song 2024); D = the tokens the budget asks for and C = the exact FLOPs (Chinchilla
    # App. F) at that D. Planned, not realized (whole steps move D by up to ~1 %), so the sizes of one token budget
    # share a D tag and those of one isoFLOP slice (budget.kind=flops_exact) a C tag; realized D and C are in the
    # summary and the record.
    tags = [data.mix_name, *quantity_tags(N=plan.n_params_total, D=plan.n_tokens_planned,
                                          C=plan.flops_per_token_exact * plan.n_tokens_planned)]  # fmt: skip
    with open_tracker(logger, name=config.run_id(), group=config.sweep, job_type="train",
                      run_config=resolved_config(config, plan), tags=tags) as tracker:  # fmt: skip
        tracker.summary(summary)
        try:
            progress = train(config, plan, data, run_dir=folder, tracker=tracker, device=device)
        except Exception as error:  # one failing grid point never sinks the sweep
            print(scrub_text(traceback.format_exc()), end="", file=sys.stderr)  # it may quote a credential
            failed = Progress(reason=f"{type(error).__name__}: {error}")
            record = record_of(failed, "failed")
            write_record(record, config.paths.results_dir)
            tracker.summary({"status": "failed", "reason": record.reason})
            return Outcome(action="resumed" if resumed else "trained", record=record)
        status = "diverged" if progress.diverged_at_step is not None else "finished"
        record = record_of(progress, status)
        write_record(record, config.paths.results_dir)
        final = {"status": status, "loss": record.final_loss, "n_tokens": record.n_tokens,
                 "flops_6nd": record.points[-1].flops_6nd if record.points else None,
                 "flops_exact": record.points[-1].flops_exact if record.points else None,
                 "tokens_per_second": record.tokens_per_second}  # fmt: skip
        tracker.summary(final)
    (folder / checkpoint.CHECKPOINT_NAME).unlink(missing_ok=True)  # the point is done: free the disk
    print(f"{status} {config.sweep}/{config.run_id()}: loss {record.final_loss} at D={record.n_tokens}"
          f" in {record.wall_time_s:.1f}s ({record.tokens_per_second:.3g} tok/s) -> {folder}")  # fmt: skip
    return Outcome(action="resumed" if resumed else "trained", record=record)
