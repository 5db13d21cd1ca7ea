"""A sweep as an object: its grid points, the work of one point, and what the whole sweep left on disk.

    sweep = Sweep(tuple(expand_grid(overrides)))   # validated grid points (scaling_lab.cli.compose)
    sweep.dry_run()          # the table sl-plan prints: every point's N, D, C, steps, batch, LR, est. time
    sweep.check_can_start()  # folders, device, memory and checkpoint of every point, before anything is created
    sweep.run()              # every point in this process, one after another
    sweep.failures()         # the points that did not end, and why
    sweep.collect(out_stem)  # the tables of its records (what sl-collect writes)

:func:`run_point` is one job of a sweep, whichever launcher runs it (``sl-train -m`` launches through Hydra, whose
launcher decides where and how many at once; each job knows only its own config): skip a point whose record says it
ended, hold the point's lock, set this process's CPU threads, prepare the data and the run's plan, claim a device,
open the tracker, and write the record through its life (running, then finished, diverged or failed) around
:func:`scaling_lab.train.run.run`, which only trains. A relaunched sweep therefore skips finished points, resumes
interrupted ones from their checkpoint, and never trains one point in two processes at once.

torch loads only when a point trains or is checked: a dry run without the probe, a failure count and a collect do
not need it.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from scaling_lab.config.schema import RunConfig
from scaling_lab.data import TokenData, prepare_data
from scaling_lab.errors import ScalingLabError, TableError
from scaling_lab.redact import scrub_text
from scaling_lab.results import RunRecord, read_record, record_path, run_dir, write_record
from scaling_lab.results.provenance import utc_now
from scaling_lab.results.store import SkippedRecordsWarning, set_aside
from scaling_lab.sweep.collect import collect
from scaling_lab.sweep.dry_run import GpuTarget, dry_run_table
from scaling_lab.sweep.grids import GridPoint
from scaling_lab.tracking import Tracker, open_tracker, quantity_tags
from scaling_lab.train.placement import cpu_threads_per_job, footprint_of, placed_device
from scaling_lab.train.plan import TrainPlan, make_plan
from scaling_lab.train.progress import Progress

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from scaling_lab.train.distributed import Ranks

LOCK_NAME = "run.lock"
# Records that end a grid point: a relaunch skips them. A diverged run would diverge again from the same config;
# failed and running (killed) ones are retried, from their checkpoint when there is one.
DONE = ("finished", "diverged")
REFUSED = "refused at its start"
"""What :func:`point_failure` says (with the reason) of a point whose start raised a user error: nothing trained."""


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What happened to a grid point."""

    action: str
    """trained, resumed, skipped-finished, skipped-diverged, skipped-failed, or skipped-locked; on a rank other than 0
    of a distributed run, trained, resumed or skipped-by-rank-0 (rank 0 decides, and its outcome says why)."""
    record: RunRecord | None
    """The record written (None when skipped)."""


@dataclass(frozen=True)
class Sweep:
    """The validated grid points of one sweep, in launch order, and what is done with all of them."""

    points: tuple[GridPoint, ...]
    """The grid points (``scaling_lab.cli.compose.expand_grid``)."""

    def dry_run(self, *, probe: bool = True, gpu: GpuTarget | None = None) -> pd.DataFrame:
        """One row per point: seeds, N, D, C, steps, batch, LR, warmup, flags and, with ``probe``, the estimated
        seconds from a few timed optimizer steps of each shape; with ``gpu``, memory, runs per GPU and GPU-hours on
        that device; trains nothing (:mod:`scaling_lab.sweep.dry_run`)."""
        return dry_run_table(self.points, probe=probe, gpu=gpu)

    def check_can_start(self) -> None:
        """ScalingLabError unless every point can start where its launcher runs it (``train.preflight``): writable
        folders, trusted checkpoint, and on this host its device, threads and memory. Creates nothing."""
        from scaling_lab.train.preflight import check_can_start

        for point in self.points:
            check_can_start(point.config, on_this_host=point.runs_here, launcher_tasks=point.launcher_tasks)

    def run(self) -> list[Outcome]:
        """Run every point in this process, one after another (Hydra's basic launcher, without Hydra)."""
        return [run_point(point.config) for point in self.points]

    def run_folders(self) -> list[Path]:
        """Each point's run folder (``<results_dir>/<sweep>/<run_id>``), whether it exists yet or not."""
        return [run_folder(point.config) for point in self.points]

    def failures(self) -> list[tuple[Path, str]]:
        """The points that did not end, each with its record (or run folder) and what happened
        (:func:`point_failure`), in launch order."""
        return [failure for failure in map(point_failure, self.points) if failure is not None]

    def release_unused_locks(self, created: set[Path]) -> None:
        """Delete the lock of each run folder that this launch created (``created``: absolute paths absent before
        it) and that holds nothing but its free lock: what a start refused for bad input leaves behind."""
        for folder in self.run_folders():
            only_lock = [path.name for path in folder.glob("*")] == [LOCK_NAME]
            if folder.absolute() in created and only_lock and not held_elsewhere(folder):
                (folder / LOCK_NAME).unlink(missing_ok=True)

    def stores(self) -> list[Path]:
        """The folders that hold the sweep's records (``<results_dir>/<sweep>``), each once."""
        return list(dict.fromkeys(Path(p.config.paths.results_dir) / p.config.sweep for p in self.points))

    def collect(self, out_stem: Path, statuses: tuple[str, ...] = ("finished",)) -> dict[str, Path]:
        """Write the tables of the records in the sweep's :meth:`stores` whose status is in ``statuses``: one row
        per run and D point, and the loss curves (:func:`scaling_lab.sweep.collect.collect`: the paths written)."""
        return collect(self.stores(), out_stem, statuses)


def run_folder(config: RunConfig) -> Path:
    """Where a run's record, checkpoint, lock and wandb files live."""
    return run_dir(config.paths.results_dir, config.sweep, config.run_id())


def held_elsewhere(folder: Path) -> bool:
    """Whether another process holds the run's lock (it is training that point now)."""
    if not (folder / LOCK_NAME).exists():
        return False
    try:
        with FileLock(folder / LOCK_NAME, timeout=0):
            return False
    except Timeout:
        return True


def point_failure(point: GridPoint) -> tuple[Path, str] | None:
    """Why a grid point did not end: its record (or run folder) and what happened (failed, interrupted, or
    :data:`REFUSED` and why); None when its record says finished or diverged, or another launch is training it."""
    config = point.config
    folder, path = run_folder(config), record_path(config.paths.results_dir, config.sweep, config.run_id())
    if not path.exists():
        return None if held_elsewhere(folder) else (folder, f"{REFUSED}: no record")
    try:
        status = read_record(path).status
    except ScalingLabError:  # run_point sets such a record aside and trains: another process wrote it since
        return path, "unreadable record"
    if status in DONE or (status == "running" and held_elsewhere(folder)):
        return None
    return path, "interrupted" if status == "running" else status


def set_threads(config: RunConfig, jobs_at_once: int) -> int:
    """torch CPU threads: config.threads, else all cores divided by the ``jobs_at_once`` a parallel launcher runs."""
    import torch

    threads = config.threads or cpu_threads_per_job(jobs_at_once)
    torch.set_num_threads(threads)
    return threads


def run_point(config: RunConfig, *, jobs_at_once: int = 1) -> Outcome:
    """Train one grid point unless it is finished or being trained elsewhere; never raises for a failed run (a
    ScalingLabError means it could not start: nothing was created).

    ``jobs_at_once``: how many grid points the launcher runs at once on this host (sl-train reads it from Hydra's
    launcher); they divide the CPU cores between them and, on a CUDA host, claim shares of its GPUs.

    Trained by several processes (:mod:`scaling_lab.train.distributed`), every process calls it and they train the
    one point together: rank 0 does all of the above (skip, lock, record, tracker) and tells the others whether to
    train; they then train beside it, one device each, writing nothing. With ``processes=K`` this call starts the K
    processes and returns rank 0's outcome; torchrun or SLURM tasks start them themselves."""
    from scaling_lab.train.distributed import (
        agreed,
        launch_ranks,
        process_group,
        ranks_from_environment,
        training_device,
    )
    from scaling_lab.train.preflight import check_can_start

    check_can_start(config, jobs_at_once=jobs_at_once)
    ranks = ranks_from_environment()
    if config.processes > 1 and not ranks.distributed:
        outcome = launch_ranks(_run_rank, (config,), config.processes)
        if isinstance(outcome, ScalingLabError):  # bad input only a rank could see: one line, from this process
            raise outcome
        return outcome
    if not ranks.distributed:
        return _lead_point(config, jobs_at_once, ranks, device=None, start=lambda: None)
    device = training_device(config.device, ranks)
    with process_group(ranks, device):
        if not ranks.main:
            return _follow_point(config, jobs_at_once, ranks, device)
        told = False

        def start() -> None:  # rank 0 trains the point: the others follow
            nonlocal told
            told = agreed(True, ranks)

        try:
            return _lead_point(config, jobs_at_once, ranks, device=device, start=start)
        finally:
            if not told:  # skipped, or the start failed: the others return too
                agreed(False, ranks)


def _run_rank(config: RunConfig) -> Outcome | ScalingLabError:
    """One rank started by :func:`run_point` for ``processes=K``: its outcome, or the bad input it refused, returned
    for the starting process to report once (raised here, every rank would print it with a traceback)."""
    try:
        return run_point(config)
    except ScalingLabError as error:
        return error


def _lead_point(config: RunConfig, jobs_at_once: int, ranks: Ranks, *, device: torch.device | None,
                start: Callable[[], None]) -> Outcome:  # fmt: skip
    """:func:`run_point` on rank 0 (or in the only process): ``device`` is the rank's, or None to place the run;
    ``start`` tells the other ranks that the point trains."""
    from scaling_lab.train.distributed import check_batch_splits
    from scaling_lab.train.preflight import check_fits_memory

    folder, path = run_folder(config), record_path(config.paths.results_dir, config.sweep, config.run_id())
    if (skipped := _skip_if_ended(config, path, locked=False)) is not None:
        return skipped
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(folder / LOCK_NAME, timeout=0):
            # Read again under the lock: another launch may have ended the point since the first read.
            if (skipped := _skip_if_ended(config, path, locked=True)) is not None:
                return skipped
            set_threads(config, jobs_at_once * ranks.local_world_size)
            data = prepare_data(config.data, config.paths.resolved_cache_dir())
            plan = make_plan(config, vocab_size=data.vocab_size)
            # again: a pretrained hf tokenizer's vocabulary is known only now
            check_fits_memory(config, plan, ranks=ranks)
            check_batch_splits(plan.batch_sequences, ranks)
            start()  # the data is prepared: the other ranks read it from the cache
            if device is not None:  # a rank of a distributed run: one device per rank, no placement
                return _train_locked(config, plan, data, folder, device, ranks)
            # the plan sizes the device share (jobs_per_device=auto packs small runs onto one GPU)
            footprint = footprint_of(plan)
            with placed_device(config.device, jobs_at_once=jobs_at_once, jobs_per_device=config.jobs_per_device,
                               footprint=footprint) as device:  # fmt: skip
                return _train_locked(config, plan, data, folder, device)
    except Timeout:
        print(f"skip {config.sweep}/{config.run_id()}: another launch holds {folder / LOCK_NAME}")
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


def _follow_point(config: RunConfig, jobs_at_once: int, ranks: Ranks, device: torch.device) -> Outcome:
    """:func:`run_point` on a rank other than 0: train beside rank 0 when it says the point trains; writes nothing
    (rank 0 records a failure that every rank shares)."""
    from scaling_lab.train.checkpoint import CHECKPOINT_NAME
    from scaling_lab.train.distributed import agreed, wait_for_all
    from scaling_lab.train.run import run

    if not agreed(None, ranks):
        return Outcome(action="skipped-by-rank-0", record=None)
    set_threads(config, jobs_at_once * ranks.local_world_size)
    data = prepare_data(config.data, config.paths.resolved_cache_dir())
    plan = make_plan(config, vocab_size=data.vocab_size)
    folder = run_folder(config)
    action = "resumed" if (folder / CHECKPOINT_NAME).exists() else "trained"
    try:
        run(config, plan, data, device=device, tracker=Tracker(), run_dir=folder, ranks=ranks)
    except Exception:  # rank 0 records the failure
        print(scrub_text(traceback.format_exc()), end="", file=sys.stderr)
    wait_for_all(ranks)
    return Outcome(action=action, record=None)


def _train_locked(config: RunConfig, plan: TrainPlan, data: TokenData, folder: Path, device: torch.device,
                  ranks: Ranks | None = None) -> Outcome:  # fmt: skip
    """The record's life around one training run: running, then finished, diverged or failed. With several
    ``ranks`` (this is rank 0) it returns once every rank has finished training."""
    from scaling_lab.train.checkpoint import CHECKPOINT_NAME
    from scaling_lab.train.distributed import SINGLE, wait_for_all
    from scaling_lab.train.run import make_record, resolved_config, run

    ranks = ranks or SINGLE
    resumed = (folder / CHECKPOINT_NAME).exists()
    action = "resumed" if resumed else "trained"
    created_at, started = utc_now(), time.perf_counter()
    write_record(make_record(config, plan, data, Progress(), status="running", created_at=created_at,
                             wall_time_s=0.0, device=device, world_size=ranks.world_size),
                 config.paths.results_dir)  # fmt: skip
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
        try:
            record = run(
                config, plan, data, device=device, tracker=tracker, run_dir=folder, created_at=created_at, ranks=ranks
            )
        except Exception as error:  # one failing grid point never sinks the sweep
            print(scrub_text(traceback.format_exc()), end="", file=sys.stderr)  # it may quote a credential
            failed = Progress(reason=f"{type(error).__name__}: {error}")
            record = make_record(config, plan, data, failed, status="failed", created_at=created_at,
                                 wall_time_s=time.perf_counter() - started, device=device,
                                 world_size=ranks.world_size)  # fmt: skip
            write_record(record, config.paths.results_dir)
            tracker.summary({"status": "failed", "reason": record.reason})
            wait_for_all(ranks)
            return Outcome(action=action, record=record)
        write_record(record, config.paths.results_dir)
    wait_for_all(ranks)
    (folder / CHECKPOINT_NAME).unlink(missing_ok=True)  # the point is done: free the disk
    print(f"{record.status} {config.sweep}/{config.run_id()}: loss {record.final_loss} at D={record.n_tokens}"
          f" in {record.wall_time_s:.1f}s ({record.tokens_per_second:.3g} tok/s) -> {folder}")  # fmt: skip
    return Outcome(action=action, record=record)
