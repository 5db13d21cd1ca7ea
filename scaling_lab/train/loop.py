"""The training loop: an orchestrator of the pieces in this package."""

from __future__ import annotations

import copy
import math
import sys
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from scaling_lab.config.schema import RunConfig
from scaling_lab.data import TokenData
from scaling_lab.model.build import build_model
from scaling_lab.tracking import Tracker
from scaling_lab.train import checkpoint
from scaling_lab.train.distributed import SINGLE, Ranks, mean_over_ranks, parallelize
from scaling_lab.train.optim import adamw_for_run
from scaling_lab.train.plan import TrainPlan
from scaling_lab.train.progress import Progress, measurement, tracked_scores
from scaling_lab.train.schedule import Cooldown, lr_at
from scaling_lab.train.step import diverged, evaluate_suite, train_step

TRACKED_TRAIN_POINTS = 1000
"""Most train/loss points a run sends its tracker: one wandb log call costs about half a millisecond, 6 % of a
width-8 quickstart step, and a thousand points draw any loss curve. Each point is the mean over the steps since the
previous one (after a resume: since the resume); a run that diverges first sends the steps before the divergence."""


def train(
    config: RunConfig,
    plan: TrainPlan,
    data: TokenData,
    *,
    run_dir: Path,
    tracker: Tracker,
    device: torch.device,
    ranks: Ranks = SINGLE,
) -> Progress:
    """Train (or resume) one run; returns its progress (points, curve, divergence). Checkpoints in ``run_dir``.

    With several ``ranks`` (:mod:`scaling_lab.train.distributed`) every rank calls it: each trains on its share of
    every global batch, and rank 0 writes the checkpoints and shows the progress bar."""
    torch.manual_seed(config.seed)
    model = build_model(config.model, vocab_size=plan.vocab_size, context=plan.sequence_length, device=device)
    # DDP wraps the model (``model`` stays the plain module: checkpoints and evaluation use it); FSDP2 shards it in
    # place, so it must happen before the optimizer sees the parameters
    wrapped = parallelize(model, ranks, n_params=plan.n_params_total, fsdp_min_params=config.fsdp_min_params)
    optimizer = adamw_for_run(model, config.optim, lr=plan.lr, beta2=plan.beta2, device=device)
    path = run_dir / checkpoint.CHECKPOINT_NAME
    progress = Progress(**(checkpoint.restore_run_state(path, model, optimizer, device) or {}))
    if progress.step and ranks.main:
        print(f"resume {config.sweep}/{config.run_id()} from step {progress.step} of {plan.steps} ({path})", flush=True)
    # evaluation runs the eager model (same weights): no_grad would make torch.compile build a second graph
    net = torch.compile(wrapped) if config.compile else wrapped
    suite, B = data.eval_suite, plan.batch_sequences
    # the curve points' tokens are shared evenly by the eval sets
    per_set = None if config.curve_eval_tokens is None else config.curve_eval_tokens // len(suite)
    curve_suite = [held.strided(per_set) for held in suite]
    micro = dict(micro_batch=plan.micro_batch_sequences, device=device)
    last = plan.cooldowns[-1] if plan.cooldowns else None
    branches = {c.start: c for c in plan.cooldowns[:-1]}

    def step_once(step: int, cooldown: Cooldown | None) -> tuple[float, float]:
        kwargs = dict(peak=plan.lr, warmup_steps=plan.warmup_steps, total_steps=plan.steps, cooldown=cooldown)
        lr, started = lr_at(step, config.schedule, **kwargs), time.perf_counter()
        first, count = ranks.batch_slice(step, B)  # one process: all B sequences from step·B
        loss = train_step(net, optimizer, data.train_sequences(first, count), lr=lr,
                          grad_clip=config.optim.grad_clip, **micro)  # fmt: skip
        loss = mean_over_ranks(loss, ranks, device)
        progress.train_seconds += time.perf_counter() - started
        progress.trained_tokens += plan.tokens_per_step
        return loss, lr

    log_every = math.ceil(plan.steps / TRACKED_TRAIN_POINTS)
    window: list[tuple[float, float]] = []  # (training loss, lr) of the steps not yet sent to the tracker

    def track(done: int) -> None:
        if window:
            mean_loss = sum(loss for loss, _ in window) / len(window)
            tracker.log({"train/loss": mean_loss, "train/lr": window[-1][1], "tokens": plan.tokens_after(done)},
                        step=done)  # fmt: skip
            window.clear()

    bar = tqdm(total=plan.n_tokens, initial=plan.tokens_after(progress.step), unit="tok", unit_scale=True,
               disable=not (config.debug.progress and ranks.main), dynamic_ncols=True,
               mininterval=progress_interval())  # fmt: skip
    with torch.autograd.set_detect_anomaly(config.debug.detect_anomaly):
        for step in range(progress.step, plan.steps):
            if step in branches and not _cooldown_branch(branches[step], model, optimizer, step_once, progress, plan,
                                                         lambda: evaluate_suite(model, suite, **micro)):  # fmt: skip
                track(step)
                break
            loss, lr = step_once(step, last if last is not None and step >= last.start else None)
            done = progress.step = step + 1
            progress.train_loss = loss
            if diverged(loss, progress.best_loss, config.divergence_factor):
                progress.diverged_at_step = done
                progress.reason = f"training loss {loss:.4g} at step {done} (best {progress.best_loss:.4g})"
                track(step)
                break
            progress.best_loss = min(progress.best_loss, loss)
            window.append((loss, lr))
            if done % log_every == 0 or done == plan.steps:
                track(done)
            bar.update(plan.tokens_per_step)  # redraws at most every mininterval; the postfix waits for that redraw
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{progress.trained_tokens / progress.train_seconds:.3g}",
                            refresh=False)  # fmt: skip
            if done in plan.eval_steps:
                scores = evaluate_suite(model, curve_suite, **micro)
                point = measurement(plan, steps=done, scores=scores, train_loss=loss)
                progress.curve.append(point)
                tracker.log({**tracked_scores(point), "tokens": point["n_tokens"], "flops_exact": point["flops_exact"]},
                            step=done)  # fmt: skip
            if done == plan.steps:  # the final point: always the whole eval suite
                whole = all(a is b for a, b in zip(curve_suite, suite, strict=True)) and done in plan.eval_steps
                final = scores if whole else evaluate_suite(model, suite, **micro)
                progress.points.append(measurement(plan, steps=done, scores=final, train_loss=loss))
            if done in plan.checkpoint_steps and done < plan.steps:
                checkpoint.save_run_state(path, model, optimizer, progress.to_dict(), write=ranks.main)
            if config.debug.crash_at_step == done:
                raise RuntimeError(f"debug.crash_at_step={done}: stopping on purpose")
    bar.close()
    return progress


def progress_interval() -> float:
    """Seconds between progress-bar refreshes: live on a terminal, every 30 s into a log file (SLURM, launchers)."""
    return 0.5 if sys.stderr.isatty() else 30.0


def _cooldown_branch(cooldown, model, optimizer, step_once, progress, plan, evaluate_now) -> bool:
    """Run one WSD cooldown from the current stable state, record its point, then restore the stable state.

    Returns False when the branch diverged (the run then stops as diverged)."""
    saved = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    loss = float("nan")
    for step in range(cooldown.start, cooldown.end):
        loss, _ = step_once(step, cooldown)
    if diverged(loss, progress.best_loss, float("inf")):
        progress.diverged_at_step, progress.reason = cooldown.end, f"cooldown to step {cooldown.end}: loss {loss}"
        return False
    progress.points.append(measurement(plan, steps=cooldown.end, scores=evaluate_now(), train_loss=loss))
    model.load_state_dict(saved[0])
    optimizer.load_state_dict(saved[1])
    return True
