"""The dry run of a sweep: every grid point's seeds, N, D, C, steps, batch, LR, warmup and estimated time; trains
nothing.

The grid points come from the entry point (``scaling_lab.cli.compose.expand_grid``: the sweep file's
``hydra.sweeper.params`` plus any multirun overrides on the command line, expanded as Hydra's basic sweeper does),
and each point's numbers come from the same :func:`scaling_lab.train.plan.make_plan` that ``sl-train`` uses (a run's
``TrainPlan``: "plan" in this code means those resolved numbers of one run; ``sl-plan`` prints this dry run). The
time estimate is measured: a short probe times a few real optimizer steps of each distinct (shape, batch) on the
device the run would train on (``device=auto``: the GPU of a CUDA host, else the CPU). A plan for a GPU
(:class:`GpuTarget`) takes its MFU and GPU-hours from that probe when it runs on the GPU planned for, and assumes an
MFU otherwise (planning offline for a GPU this machine lacks).
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
    shards_parameters,
)
from scaling_lab.sweep.grids import GridPoint
from scaling_lab.train.placement import MAX_JOBS_PER_DEVICE, footprint_of, jobs_that_fit
from scaling_lab.train.plan import TrainPlan, make_plan

MIN_STEPS = 50  # fewer optimizer steps leave warmup + cosine too coarse to trust the final loss
MIN_BATCH_SEQUENCES = 4  # smaller batches make the final loss a noisy function of the last few batches
PROBE_STEPS = 3  # timed steps per distinct (shape, batch), after one untimed warm-up step


@dataclass(frozen=True, kw_only=True)
class GpuTarget:
    """The GPU a dry run plans for: its name, dense bf16 peak, memory, and the MFU: assumed for every run, or
    measured per shape by the probe on this GPU."""

    name: str
    """The device's name as ``torch.cuda.get_device_name()`` gives it, e.g. "NVIDIA H100 80GB HBM3"."""
    peak_flops: float
    """Dense bf16 FLOP/s (``hardware.PEAK_BF16_FLOPS``, or given)."""
    memory_bytes: int
    """Device memory (``hardware.DEVICE_MEMORY_GB``, or given)."""
    mfu: float = DEFAULT_MFU
    """Model-FLOPs utilisation assumed for every run (``hardware.DEFAULT_MFU`` unless given); unused when measured."""
    gpus: int = 1
    """GPUs the sweep runs on at once (for the wall-clock line)."""
    measured_on: str | None = None
    """The torch device the probe times the steps on ("cuda:0"): each row's MFU and GPU-hours then come from its
    measured step time. None: every run assumes ``mfu`` and nothing is probed."""
    why_assumed: str = ""
    """Why the MFU is assumed although this machine has a GPU (for the header; empty offline)."""

    @property
    def mfu_source(self) -> str:
        """Where the MFU comes from, for the plan's header."""
        if self.measured_on is not None:
            return f"measured by probe on {self.measured_on}"
        return f"default, from {DEFAULT_MFU_SOURCE}" if self.mfu == DEFAULT_MFU else "given with --mfu"


@dataclass(frozen=True, kw_only=True)
class PresentGpu:
    """The CUDA device of this machine that a run would train on."""

    device: str
    """The torch device, e.g. "cuda:0"."""
    name: str
    """``torch.cuda.get_device_name`` of it."""
    memory_bytes: int
    """Its total memory as the driver reports it."""


def gpu_target(
    name: str,
    *,
    mfu: float = DEFAULT_MFU,
    gpus: int = 1,
    peak_tflops: float | None = None,
    memory_gb: float | None = None,
    measured_on: str | None = None,
    why_assumed: str = "",
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
    return GpuTarget(name=name, peak_flops=peak, memory_bytes=memory, mfu=mfu, gpus=gpus, measured_on=measured_on,
                     why_assumed=why_assumed)  # fmt: skip


def why_mfu_assumed(present: str | None, device_name: str | None, *, mfu_given: bool, probe: bool) -> str | None:
    """Whether a GPU plan measures its MFU: None when it does (this machine's GPU, ``present``, is the one planned
    for: ``--device-name`` names no other, and neither ``--mfu`` nor ``--no-probe`` was given); otherwise why it
    assumes one, for the plan's header ("" when this machine has no GPU: the header already says nothing was
    measured)."""
    if present is None:
        return ""
    if not _same_device(device_name, present):
        return f"this machine's {present} is not the device planned for: nothing measured"
    if mfu_given:
        return f"--mfu overrides the probe on this machine's {present}"
    if not probe:
        return f"--no-probe: nothing measured on this machine's {present}"
    return None


def planned_gpu(
    present: PresentGpu | None,
    *,
    device_name: str | None,
    mfu: float | None,
    gpus: int = 1,
    peak_tflops: float | None = None,
    memory_gb: float | None = None,
    probe: bool = True,
) -> GpuTarget | None:
    """The GPU a plan is for, from sl-plan's options and this machine's GPU (``present``; None on a CPU machine):
    the named device, else the present one (None: no GPU plan), with its MFU measured by the probe or assumed
    (:func:`why_mfu_assumed`). A present GPU without a known datasheet is planned for with its own memory; without
    a known peak (and no ``--peak-tflops``) there is no GPU plan, only the probe's times on it."""
    name = device_name if device_name is not None else present.name if present is not None else None
    if name is None:
        if (mfu, gpus, peak_tflops, memory_gb) != (None, 1, None, None):
            raise ConfigError("--mfu, --gpus, --peak-tflops and --memory-gb plan for a GPU and this machine has none:"
                              " give --device-name too")  # fmt: skip
        return None
    why = why_mfu_assumed(present and present.name, device_name, mfu_given=mfu is not None, probe=probe)
    this_gpu = present is not None and _same_device(device_name, present.name)
    if this_gpu and memory_gb is None and device_memory_bytes(name) is None:  # no datasheet: the driver's number
        memory_gb = present.memory_bytes / 1e9
    if device_name is None and peak_tflops is None and peak_flops(name) is None:
        return None
    return gpu_target(name, mfu=DEFAULT_MFU if mfu is None else mfu, gpus=gpus, peak_tflops=peak_tflops,
                      memory_gb=memory_gb, measured_on=present.device if why is None else None,
                      why_assumed=why or "")  # fmt: skip


def _same_device(device_name: str | None, present: str) -> bool:
    """Whether ``--device-name`` (None: not given) names this machine's GPU (case and outer spaces aside)."""
    return device_name is None or device_name.strip().casefold() == present.casefold()


def present_gpu(configs: Sequence[RunConfig]) -> PresentGpu | None:
    """The CUDA device these runs would train on here (the one ``device`` of them all, ``auto`` resolved as
    ``sl-train`` resolves it), or None: no CUDA, or runs on the CPU or on different devices."""
    import torch

    if not torch.cuda.is_available():
        return None
    devices = {probe_device(config) for config in configs}
    if len(devices) != 1 or not (device := devices.pop()).startswith("cuda"):
        return None
    properties = torch.cuda.get_device_properties(device)
    return PresentGpu(device=device, name=properties.name, memory_bytes=properties.total_memory)


def _vocab_size(config: RunConfig) -> int:
    """The tokenizer's vocabulary; only a pretrained hf tokenizer has to be loaded to know it."""
    from scaling_lab.data import planned_vocab_size, prepare_data

    planned = planned_vocab_size(config.data.tokenizer)
    return planned or prepare_data(config.data, config.paths.resolved_cache_dir()).vocab_size


def probe_device(config: RunConfig) -> str:
    """The device a run of this config trains on alone, as ``sl-train`` places it (``auto``: the GPU of a CUDA host,
    else the CPU), or ConfigError when this machine lacks it."""
    from scaling_lab.train.placement import check_device_available, placed_device

    try:
        check_device_available(config.device)
    except ConfigError as error:
        raise ConfigError(f"{error}; or plan without probing it: --no-probe, or --device-name for a GPU this machine"
                          " lacks") from None  # fmt: skip
    with placed_device(config.device) as device:
        if device.type == "cuda" and device.index is None:  # a bare "cuda" trains on the current device
            import torch

            return f"cuda:{torch.cuda.current_device()}"
        return str(device)


def probe_seconds_per_step(config: RunConfig, plan: TrainPlan, *, device: str | None = None) -> float:
    """Median wall time of one real optimizer step (forward, backward, the run's AdamW) of this shape and batch, on
    ``device`` (None: the run's own, :func:`probe_device`)."""
    import numpy as np
    import torch

    from scaling_lab.model.build import build_model
    from scaling_lab.train.optim import adamw_for_run
    from scaling_lab.train.step import train_step

    where = torch.device(device or probe_device(config))
    torch.manual_seed(0)
    model = build_model(config.model, vocab_size=plan.vocab_size, context=plan.sequence_length, device=where)
    optimizer = adamw_for_run(model, config.optim, lr=plan.lr, beta2=plan.beta2, device=where)
    batch = np.random.default_rng(0).integers(
        0, plan.vocab_size, (plan.batch_sequences, plan.sequence_length + 1), dtype=np.int64
    )
    times = []
    for index in range(PROBE_STEPS + 1):
        _synchronize(where)  # a GPU runs kernels asynchronously: time from an idle device to an idle device
        started = time.perf_counter()
        train_step(model, optimizer, batch, lr=plan.lr, micro_batch=plan.micro_batch_sequences,
                   grad_clip=config.optim.grad_clip, device=where)  # fmt: skip
        _synchronize(where)
        if index:  # the first step pays for allocation and kernel selection
            times.append(time.perf_counter() - started)
    return float(np.median(times))


def _synchronize(device) -> None:
    """Wait for the device's queued kernels (CUDA and MPS run them asynchronously; the CPU does not)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def dry_run_table(points: Sequence[GridPoint], *, probe: bool = True, gpu: GpuTarget | None = None) -> pd.DataFrame:
    """One row per grid point with its numbers, estimated seconds (when probed), the GPU columns (for a ``gpu``:
    micro-batch, memory, runs per GPU, MFU, GPU-hours) and flags. The attribute ``table.attrs["gpu"]`` keeps the
    target. Each point is probed on its own device (:func:`probe_device`), or on ``gpu.measured_on`` (always
    probed): the GPU columns then come from the measured step times."""
    rows, probes, seen = [], {}, {}
    measured = gpu is not None and gpu.measured_on is not None
    probe = probe or measured
    devices = []
    for point in points:  # the plan tokenizes into the data cache (epochs, an hf tokenizer's vocabulary)
        point.config.paths.check_writable(results=False)
        if probe:  # a device this machine lacks ends the plan before anything is tokenized or built
            devices.append(gpu.measured_on if measured else probe_device(point.config))
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
        step_seconds = eval_seconds = None
        if probe:
            probe_key = (row["shape"], plan.batch_sequences, plan.micro_batch_sequences, devices[index])
            if probe_key not in probes:
                probes[probe_key] = probe_seconds_per_step(config, plan, device=devices[index])
            step_seconds = probes[probe_key]
            # An eval forward costs about a third of a training step per sequence (backward = 2 × forward).
            eval_seconds = eval_forwards / plan.batch_sequences * step_seconds / 3
            row["step_seconds"] = step_seconds
            row["est_seconds"] = plan.steps_trained * step_seconds + eval_seconds
        if gpu is not None:
            flags += _add_gpu_columns(row, plan, gpu, measured=(step_seconds, eval_seconds) if measured else None,
                                      processes=config.processes, fsdp_min_params=config.fsdp_min_params)  # fmt: skip
        row["flags"] = "; ".join(flags)
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs["gpu"] = gpu
    return table


def _add_gpu_columns(row: dict, plan: TrainPlan, gpu: GpuTarget, *, measured: tuple[float, float] | None,
                     processes: int, fsdp_min_params: int) -> list[str]:  # fmt: skip
    """Fill a row's GPU columns; return its flags (a run that does not fit the device). ``measured``: the probe's
    seconds per step and the eval's seconds on ``gpu``; None: the MFU is assumed and evals are left out. A run of
    several ``processes`` takes a GPU each: its memory is one process's (FSDP2-sharded from ``fsdp_min_params``);
    its GPU-hours are the whole run's (the wall-clock line divides them by ``processes``)."""
    sharded = shards_parameters(plan.n_params_total, world_size=processes, fsdp_min_params=fsdp_min_params)
    footprint = footprint_of(plan, world_size=processes, sharded=sharded)
    memory = footprint.memory_bytes
    row["processes"] = processes
    row["micro_batch"] = plan.micro_batch_sequences
    row["memory_gb"] = memory / 1e9
    # cores are taken as no limit (one per packed run): the host's share of cores per GPU is unknown to a plan
    row["runs_per_gpu"] = 1 if processes > 1 else jobs_that_fit(footprint, device_memory_bytes=gpu.memory_bytes,
                                                               cpu_cores_per_device=MAX_JOBS_PER_DEVICE)  # fmt: skip
    mfu, eval_seconds = gpu.mfu, 0.0
    if measured is not None:
        step_seconds, eval_seconds = measured
        # Chowdhery et al. 2022 (PaLM, Appendix B): the model FLOPs of a step over the step's time, over the peak
        mfu = plan.flops_per_token_exact * plan.tokens_per_step / step_seconds / gpu.peak_flops
        if mfu > 1:
            raise ConfigError(f"the probe measured {mfu:.0%} MFU on {gpu.name}, more than its peak of"
                              f" {gpu.peak_flops / 1e12:g} TFLOP/s allows: give its dense bf16 peak with"
                              " --peak-tflops")  # fmt: skip
    row["mfu"] = mfu
    # measured: = steps trained × seconds per step + evals, as est_seconds (flops_spent_exact counts those steps)
    row["gpu_hours"] = gpu_hours(plan.flops_spent_exact, peak_flops_per_second=gpu.peak_flops, mfu=mfu)
    row["gpu_hours"] += eval_seconds / 3600
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
    for column in ("n_tokens", "flops_6nd", "flops_exact", "flops_spent", "lr", "step_seconds", "gpu_hours"):
        if column in shown:
            shown[column] = shown[column].map(lambda v: f"{v:.3g}")
    for column in ("est_seconds", "memory_gb"):
        if column in shown:
            shown[column] = shown[column].map(lambda v: f"{v:.1f}")
    if "mfu" in shown:
        shown["mfu"] = shown["mfu"].map(lambda v: f"{v:.1%}")
    gpu = table.attrs.get("gpu")
    measured = gpu is not None and gpu.measured_on is not None
    if measured:
        how = (f"MFU {gpu.mfu_source} (column mfu, per shape); gpu_hours = steps × measured seconds per step + evals"
               " (= est_seconds);")  # fmt: skip
    elif gpu is not None:
        why = f" {gpu.why_assumed};" if gpu.why_assumed else ""
        how = (f"MFU assumed {gpu.mfu:.0%} ({gpu.mfu_source});{why} gpu_hours = exact FLOPs spent / (peak × MFU),"
               " evals left out;")  # fmt: skip
    lines = [] if gpu is None else [
        f"GPU plan for {gpu.name}: dense bf16 peak {gpu.peak_flops / 1e12:.0f} TFLOP/s,"
        f" {gpu.memory_bytes / 1e9:.0f} GB; {how}"
        " memory_gb = estimated peak of one process of a run (model/hardware.py; a run of several processes"
        " trains on a GPU each, sharded by FSDP2 from fsdp_min_params);"
        " runs_per_gpu = copies that share one GPU under jobs_per_device=auto (1: alone)."
        + (" A measured MFU is one GPU's: the traffic between processes is not counted."
           if measured and (table.processes > 1).any() else "")
        + ("" if measured else " Nothing here was measured on a GPU.")
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
        hours, longest = table.gpu_hours.sum(), (table.gpu_hours / table.processes).max()
        packed = int((table.runs_per_gpu > 1).sum())
        at = f"{table.mfu.min():.1%}–{table.mfu.max():.1%} MFU (measured)" if measured else f"{gpu.mfu:.0%} MFU"
        lines.append(
            f"{hours:.3g} GPU-hours on {gpu.name} at {at}; on {gpu.gpus} GPU{'s' * (gpu.gpus > 1)} at"
            f" least {max(hours / gpu.gpus, longest):.3g} h of wall-clock (GPU-hours / GPUs: {hours / gpu.gpus:.3g} h;"
            f" the longest run: {longest:.3g} h); {packed} of {len(table)} points small enough to share a GPU"
        )
    if table.max_epochs.isna().any():
        lines.append("epochs not checked for hub data: the plan never downloads or tokenizes it (the first sl-train"
                     " does; its data.epochs warning names a source repeated past 4 epochs)")  # fmt: skip
    return "\n".join(lines)
