"""The dry run of a sweep: every grid point's seeds, N, D, C, steps, batch, LR, warmup and estimated time; trains
nothing.

The grid points come from the entry point (``scaling_lab.cli.compose.expand_grid``: the sweep file's
``hydra.sweeper.params`` plus any multirun overrides on the command line, expanded as Hydra's basic sweeper does),
and each point's numbers come from the same :func:`scaling_lab.train.plan.make_plan` that ``sl-train`` uses (a run's
``TrainPlan``: "plan" in this code means those resolved numbers of one run; ``sl-plan`` prints this dry run). The
time estimate is measured: a short probe times a few real optimizer steps of each distinct (shape, batch) on this
device.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from scaling_lab.budget import MAX_EPOCHS, flops_6nd
from scaling_lab.config.schema import RunConfig
from scaling_lab.data import eval_sets_of
from scaling_lab.errors import ConfigError
from scaling_lab.model.hardware import (
    DEFAULT_MFU,
    DEFAULT_MFU_SOURCE,
    PEAK_BF16_FLOPS,
    device_memory_bytes,
    gpu_hours,
    peak_flops,
)
from scaling_lab.sweep.grids import GridPoint
from scaling_lab.train.placement import MAX_JOBS_PER_DEVICE, footprint_of, jobs_that_fit
from scaling_lab.train.plan import TrainPlan, make_plan

MIN_STEPS = 50  # fewer optimizer steps leave warmup + cosine too coarse to trust the final loss
MIN_BATCH_SEQUENCES = 4  # smaller batches make the final loss a noisy function of the last few batches
PROBE_STEPS = 3  # timed steps per distinct (shape, batch), after one untimed warm-up step


@dataclass(frozen=True, kw_only=True)
class GpuTarget:
    """The GPU a dry run plans for: its name, dense bf16 peak, memory, and the MFU assumed for every run."""

    name: str
    """The device's name as ``torch.cuda.get_device_name()`` gives it, e.g. "NVIDIA H100 80GB HBM3"."""
    peak_flops: float
    """Dense bf16 FLOP/s (``hardware.PEAK_BF16_FLOPS``, or given)."""
    memory_bytes: int
    """Device memory (``hardware.DEVICE_MEMORY_GB``, or given)."""
    mfu: float = DEFAULT_MFU
    """Model-FLOPs utilisation assumed for every run (``hardware.DEFAULT_MFU`` unless measured and given)."""
    gpus: int = 1
    """GPUs the sweep runs on at once (for the wall-clock line)."""

    @property
    def mfu_source(self) -> str:
        """Where the MFU comes from, for the plan's header."""
        return f"default, from {DEFAULT_MFU_SOURCE}" if self.mfu == DEFAULT_MFU else "given with --mfu"


def gpu_target(
    name: str,
    *,
    mfu: float = DEFAULT_MFU,
    gpus: int = 1,
    peak_tflops: float | None = None,
    memory_gb: float | None = None,
) -> GpuTarget:
    """The :class:`GpuTarget` for a device name, or ConfigError naming the option to give (an unknown device needs
    its peak and memory)."""
    if not 0 < mfu <= 1:
        raise ConfigError(f"--mfu={mfu} must lie in (0, 1]: a fraction of the peak, e.g. 0.3")
    if gpus < 1:
        raise ConfigError(f"--gpus={gpus} must be ≥ 1")
    for option, value in (("--peak-tflops", peak_tflops), ("--memory-gb", memory_gb)):
        if value is not None and not value > 0:
            raise ConfigError(f"{option}={value} must be > 0")
    peak = peak_tflops * 1e12 if peak_tflops is not None else peak_flops(name)
    memory = int(memory_gb * 1e9) if memory_gb is not None else device_memory_bytes(name)
    if peak is None or memory is None:
        missing = " and ".join(o for o, v in (("--peak-tflops", peak), ("--memory-gb", memory)) if v is None)
        known = ", ".join(PEAK_BF16_FLOPS)
        raise ConfigError(f"--device-name={name!r} is not a device with a known datasheet ({known}): name one of them,"
                          f" or give {missing}")  # fmt: skip
    return GpuTarget(name=name, peak_flops=peak, memory_bytes=memory, mfu=mfu, gpus=gpus)


def _vocab_size(config: RunConfig) -> int:
    """The tokenizer's vocabulary; only a pretrained hf tokenizer has to be loaded to know it."""
    from scaling_lab.data import planned_vocab_size, prepare_data

    planned = planned_vocab_size(config.data.tokenizer)
    return planned or prepare_data(config.data, config.paths.resolved_cache_dir()).vocab_size


def probe_seconds_per_step(config: RunConfig, plan: TrainPlan, *, device: str = "cpu") -> float:
    """Median wall time of one real optimizer step (forward, backward, the run's AdamW) of this shape and batch."""
    import numpy as np
    import torch

    from scaling_lab.model.build import build_model
    from scaling_lab.train.optim import adamw_for_run
    from scaling_lab.train.step import train_step

    torch.manual_seed(0)
    model = build_model(config.model, vocab_size=plan.vocab_size, context=plan.sequence_length, device=device)
    optimizer = adamw_for_run(model, config.optim, lr=plan.lr, beta2=plan.beta2, device=torch.device(device))
    batch = np.random.default_rng(0).integers(
        0, plan.vocab_size, (plan.batch_sequences, plan.sequence_length + 1), dtype=np.int64
    )
    times = []
    for index in range(PROBE_STEPS + 1):
        started = time.perf_counter()
        train_step(model, optimizer, batch, lr=plan.lr, micro_batch=plan.micro_batch_sequences,
                   grad_clip=config.optim.grad_clip, device=torch.device(device))  # fmt: skip
        if index:  # the first step pays for allocation and kernel selection
            times.append(time.perf_counter() - started)
    return float(np.median(times))


def dry_run_table(points: Sequence[GridPoint], *, probe: bool = True, gpu: GpuTarget | None = None) -> pd.DataFrame:
    """One row per grid point with its numbers, estimated seconds (when probed), the GPU columns (for a ``gpu``:
    micro-batch, memory, runs per GPU, GPU-hours) and flags. The attribute ``table.attrs["gpu"]`` keeps the target."""
    rows, probes, seen = [], {}, {}
    for point in points:  # the plan tokenizes into the data cache (epochs, an hf tokenizer's vocabulary)
        point.config.paths.check_writable(results=False)
    for index, point in enumerate(points):
        config = point.config
        plan = make_plan(config, vocab_size=_vocab_size(config))
        # At most one id per byte of held-out text (exact for the byte tokenizer; a BPE needs ~3-4× fewer)
        eval_tokens = config.data.eval_bytes * len(eval_sets_of(config.data))
        eval_sequences = max(1, eval_tokens // plan.sequence_length)
        curve_tokens = config.curve_eval_tokens or eval_tokens
        curve_sequences = min(eval_sequences, max(1, curve_tokens // plan.sequence_length))
        # Curve points score a subset; each final point (one per WSD cooldown) scores the whole eval suite.
        eval_forwards = len(plan.eval_steps) * curve_sequences + len(plan.point_steps) * eval_sequences
        row = {
            "point": index,
            "run_id": config.run_id(),
            "seed": config.seed,
            "data_seed": config.data.seed,
            "overrides": " ".join(point.overrides),
            "shape": f"L{plan.shape.n_layers}xd{plan.shape.width}xh{plan.shape.n_heads}"
            + (  # experts: own probe
                f"xe{plan.shape.n_experts}k{plan.shape.experts_per_token}" if plan.shape.n_experts > 1 else ""
            ),
            "n_params_total": plan.n_params_total,
            "n_params_nonembed": plan.n_params_nonembed,
            "n_params_active": plan.n_params_active,  # = n_params_total unless the model routes experts
            "n_tokens": plan.n_tokens,
            "flops_6nd": flops_6nd(plan.n_params_active, plan.n_tokens),
            "flops_exact": plan.flops_per_token_exact * plan.n_tokens,
            "flops_spent": plan.flops_spent_exact,
            "steps": plan.steps,
            "batch_tokens": plan.tokens_per_step,
            "lr": plan.lr,
            "warmup_steps": plan.warmup_steps,
            "points": len(plan.point_steps),
        }
        flags = []
        key = (row["shape"], row["n_tokens"], row["batch_tokens"], row["lr"], config.schedule.kind, config.seed,
               config.data.seed, repr(config.data))  # a sweep over data mixes trains each mix  # fmt: skip
        if key in seen:
            flags.append(f"same run as point {seen[key]}")
        seen.setdefault(key, index)
        if plan.steps < MIN_STEPS:
            flags.append(f"only {plan.steps} steps (< {MIN_STEPS})")
        if plan.batch_sequences < MIN_BATCH_SEQUENCES:
            flags.append(f"batch of {plan.batch_sequences} sequences (< {MIN_BATCH_SEQUENCES})")
        epochs = _epochs(config, plan.n_tokens_trained) if not _reads_hub(config) else {}
        row["max_epochs"] = max(epochs.values()) if epochs else math.nan
        flags += [f"{name} repeated {e:.1f} epochs (> {MAX_EPOCHS:g})" for name, e in epochs.items() if e > MAX_EPOCHS]
        if probe:
            probe_key = (row["shape"], plan.batch_sequences, plan.micro_batch_sequences)
            if probe_key not in probes:
                probes[probe_key] = probe_seconds_per_step(config, plan)
            step_seconds = probes[probe_key]
            # An eval forward costs about a third of a training step per sequence (backward = 2 × forward).
            eval_seconds = eval_forwards / plan.batch_sequences * step_seconds / 3
            row["est_seconds"] = plan.steps_trained * step_seconds + eval_seconds
        if gpu is not None:
            flags += _add_gpu_columns(row, plan, gpu)
        row["flags"] = "; ".join(flags)
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["gpu"] = gpu
    return table


def _add_gpu_columns(row: dict, plan: TrainPlan, gpu: GpuTarget) -> list[str]:
    """Fill a row's GPU columns; return its flags (a run that does not fit the device)."""
    memory = footprint_of(plan).memory_bytes
    row["micro_batch"] = plan.micro_batch_sequences
    row["memory_gb"] = memory / 1e9
    # cores are taken as no limit (one per packed run): the host's share of cores per GPU is unknown to a plan
    row["runs_per_gpu"] = jobs_that_fit(footprint_of(plan), device_memory_bytes=gpu.memory_bytes,
                                        cpu_cores_per_device=MAX_JOBS_PER_DEVICE)  # fmt: skip
    row["gpu_hours"] = gpu_hours(plan.flops_spent_exact, peak_flops_per_second=gpu.peak_flops, mfu=gpu.mfu)
    if memory > gpu.memory_bytes:
        return [f"needs {memory / 1e9:.0f} GB > {gpu.memory_bytes / 1e9:.0f} GB: lower optim.micro_batch_sequences"]
    return []


def _reads_hub(config: RunConfig) -> bool:
    """Whether the data or its eval suite streams from the hub: a plan never downloads or tokenizes it."""
    return any(source.kind == "hub" for source in [*config.data.sources, *eval_sets_of(config.data)])


def _epochs(config: RunConfig, n_tokens: int) -> dict[str, float]:
    """Epochs of each source a run of ``n_tokens`` implies (needs the token cache; built once and shared)."""
    from scaling_lab.data import prepare_data

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the plan reports repetition as a flag instead
        return prepare_data(config.data, config.paths.resolved_cache_dir()).epochs(n_tokens)


def format_dry_run(table: pd.DataFrame) -> str:
    """A fixed-width table and totals, for the terminal."""
    shown = table.drop(columns=["overrides"]).copy()
    for column in ("n_tokens", "flops_6nd", "flops_exact", "flops_spent", "lr", "gpu_hours"):
        if column in shown:
            shown[column] = shown[column].map(lambda v: f"{v:.3g}")
    for column in ("est_seconds", "memory_gb"):
        if column in shown:
            shown[column] = shown[column].map(lambda v: f"{v:.1f}")
    gpu = table.attrs.get("gpu")
    lines = [] if gpu is None else [
        f"GPU plan for {gpu.name}: dense bf16 peak {gpu.peak_flops / 1e12:.0f} TFLOP/s,"
        f" {gpu.memory_bytes / 1e9:.0f} GB; MFU assumed {gpu.mfu:.0%} ({gpu.mfu_source});"
        " gpu_hours = exact FLOPs spent / (peak × MFU), evals left out;"
        " memory_gb = estimated peak of one run (model/hardware.py);"
        " runs_per_gpu = copies that share one GPU under jobs_per_device=auto (1: alone)."
        " Nothing here was measured on a GPU."
    ]  # fmt: skip
    lines.append(shown.to_string(index=False))
    total = (
        f"{len(table)} points, {table.flops_6nd.sum():.3g} FLOPs (6ND), {table.flops_exact.sum():.3g} FLOPs (exact);"
        f" {table.flops_spent.sum():.3g} FLOPs spent (exact, WSD cooldown branches included)"
    )
    if "est_seconds" in table:
        total += f", estimated {table.est_seconds.sum() / 60:.1f} min run one after another on this machine"
    flagged = int((table["flags"] != "").sum())
    lines.append(total + (f"; {flagged} points flagged" if flagged else ""))
    if gpu is not None:
        hours, longest = table.gpu_hours.sum(), table.gpu_hours.max()
        packed = int((table.runs_per_gpu > 1).sum())
        lines.append(
            f"{hours:.3g} GPU-hours on {gpu.name} at {gpu.mfu:.0%} MFU; on {gpu.gpus} GPU{'s' * (gpu.gpus > 1)} at"
            f" least {max(hours / gpu.gpus, longest):.3g} h of wall-clock (GPU-hours / GPUs: {hours / gpu.gpus:.3g} h;"
            f" the longest run: {longest:.3g} h); {packed} of {len(table)} points small enough to share a GPU"
        )
    if table.max_epochs.isna().any():
        lines.append("epochs not checked for hub data: the plan never downloads or tokenizes it (the first sl-train"
                     " does; its data.epochs warning names a source repeated past 4 epochs)")  # fmt: skip
    return "\n".join(lines)
