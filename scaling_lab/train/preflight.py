"""Can this run start here? Asked before it creates a folder, takes a lock, tokenizes text or builds a model.

``sl-train`` asks for every grid point before Hydra creates its output folders, and
:func:`scaling_lab.sweep.sweep.run_point` asks again first thing (a library caller, a job started on another host), so
a folder that cannot be written, a device this machine lacks, a model too large for its memory or an untrusted
checkpoint ends with one ``error:`` line, exit 2, and leaves nothing behind.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

from scaling_lab.config.schema import RunConfig
from scaling_lab.cores import usable_cores
from scaling_lab.data import planned_vocab_size
from scaling_lab.errors import ConfigError
from scaling_lab.model.hardware import (
    DDP_BUCKET_BYTES,
    PARAMETER_STATE_BYTES,
    TRAINING_BYTES_PER_PARAM,
    micro_batch_that_fits,
    processes_that_fit_sharded,
    shards_parameters,
)
from scaling_lab.model.shapes import ModelConfig
from scaling_lab.results import run_dir
from scaling_lab.train.checkpoint import CHECKPOINT_NAME, check_run_checkpoint
from scaling_lab.train.distributed import (
    SINGLE,
    Ranks,
    check_batch_splits,
    check_processes,
    planned_ranks,
    training_device,
)
from scaling_lab.train.placement import check_device_available, footprint_of, memory_bytes
from scaling_lab.train.plan import TrainPlan, make_plan


def check_can_start(config: RunConfig, *, on_this_host: bool = True, jobs_at_once: int = 1,
                    launcher_tasks: int = 1) -> None:  # fmt: skip
    """ScalingLabError unless the run can start: its folders are writable and its checkpoint (if any) is trusted;
    and, when it runs on this host (``on_this_host``; not for a SLURM array submitted from here), its device exists,
    it asks for no more CPU threads than there are cores, its model fits the device's memory, and its batch splits
    over the processes that train it together. Off this host, only the batch is checked: against the
    ``launcher_tasks`` that train it (a SLURM job's tasks), before the job is submitted."""
    config.paths.check_writable()
    check_run_checkpoint(run_dir(config.paths.results_dir, config.sweep, config.run_id()) / CHECKPOINT_NAME)
    if not on_this_host:
        if launcher_tasks > 1 and (plan := _plan_if_vocabulary_known(config)) is not None:
            check_batch_splits(plan.batch_sequences, Ranks(world_size=launcher_tasks))
        return
    check_device_available(config.device)
    ranks = planned_ranks(config.processes)
    check_processes(ranks, config.device, jobs_at_once=jobs_at_once)
    cores = usable_cores()
    if config.threads is not None and config.threads > cores:  # each thread reserves a stack: 1e5 of them crash
        raise ConfigError(f"threads={config.threads} is more than the {cores} cores this process may use: set"
                          f" threads={cores} or null (all cores / parallel jobs)")  # fmt: skip
    if (plan := _plan_if_vocabulary_known(config)) is not None:
        check_fits_memory(config, plan, ranks=ranks)
        check_batch_splits(plan.batch_sequences, ranks)


def _plan_if_vocabulary_known(config: RunConfig) -> TrainPlan | None:
    """The run's plan, or None where its tokenizer's vocabulary is known only once it is loaded (a pretrained hf
    tokenizer: run_point checks then)."""
    vocab_size = planned_vocab_size(config.data.tokenizer)
    if vocab_size is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the run's own plan shows its warnings, once
        return make_plan(config, vocab_size=vocab_size)


def model_setting(model: ModelConfig) -> str:
    """The setting that chose the model's size, as the user wrote it."""
    if model.preset is not None:
        return f"model.preset={model.preset}"
    if model.target_n is not None:
        return f"model.target_n={model.target_n:g}"
    return f"model.n_layers={model.n_layers} model.width={model.width}"


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"


def _parameter_bytes(world_size: int, sharded: bool) -> str:
    """What the parameter state of one process holds, for messages."""
    if sharded:
        return (f"{PARAMETER_STATE_BYTES} bytes each of weights, gradients and AdamW moments split over"
                f" {world_size} processes, plus every weight's bf16 copy and the gathered blocks")  # fmt: skip
    if world_size > 1:
        return (f"{TRAINING_BYTES_PER_PARAM + DDP_BUCKET_BYTES} bytes each in every one of {world_size} processes:"
                " weights, gradients, AdamW moments, DDP's gradient buckets")  # fmt: skip
    return f"{TRAINING_BYTES_PER_PARAM} bytes each: weights, gradients, AdamW moments"


def device_per_process(device: str) -> bool:
    """Whether each process of a run trains on a device of its own (CUDA: ``cuda:LOCAL_RANK``) rather than in the
    host's memory, which the run's processes on one host share (cpu; mps trains in one process only)."""
    return training_device(device, SINGLE).type == "cuda"


def check_fits_memory(config: RunConfig, plan: TrainPlan, *, ranks: Ranks = SINGLE) -> None:
    """ConfigError unless the estimated peak memory of one of the processes (``ranks``) that train the run
    (``hardware.training_memory_bytes``: an upper bound; sharded by FSDP2 from ``config.fsdp_min_params`` parameters,
    the rule ``distributed.parallelize`` follows) fits the whole memory of its device, or on the CPU its share of
    the host's memory (shared by the run's processes on this host). Only
    what cannot fit at all is refused; the estimate names the setting to change: the model or vocabulary (or, on
    GPUs, for parameter state too large for one device, the number of processes to shard it over), the sequence
    length, or the micro-batch (gradient accumulation keeps the batch).
    """
    whole, where = memory_bytes(config.device)
    own_device = device_per_process(config.device)
    world_size, sharing = ranks.world_size, 1 if own_device else ranks.local_world_size
    have = None if whole is None else whole // sharing
    if sharing > 1:
        where = f"{where} per process ({_gib(whole)} shared by {sharing})"
    sharded = shards_parameters(plan.n_params_total, world_size=world_size, fsdp_min_params=config.fsdp_min_params)

    def need(micro_batch_sequences: int) -> int:
        micro_plan = replace(plan, micro_batch_sequences=micro_batch_sequences)
        return footprint_of(micro_plan, world_size=world_size, sharded=sharded).memory_bytes

    if have is None or need(plan.micro_batch_sequences) <= have:
        return
    model = model_setting(config.model)
    each = f" in each of {world_size} processes" if world_size > 1 else ""
    parameters_only = need(0)
    if parameters_only > have:
        vocabulary_heavy = plan.n_params_total - plan.n_params_nonembed > plan.n_params_nonembed
        fix = "choose a smaller data.tokenizer.vocab_size" if vocabulary_heavy else "choose a smaller model"
        # sharded with one sequence per micro-batch (the check then names the micro-batch); on a GPU each: processes
        # sharing the host's memory each add their own bf16 copies, so sharding does not shrink their sum
        processes = None if not own_device else processes_that_fit_sharded(
            plan.shape, vocab_size=plan.vocab_size, n_params=plan.n_params_total,
            micro_batch_tokens=plan.sequence_length, device_memory_bytes=have,
        )  # fmt: skip
        if processes is not None:
            fix = (f"it fits sharded across {processes} or more processes, one GPU each (processes={processes}, or"
                   f" as many torchrun ranks or SLURM tasks), with fsdp_min_params at most {plan.n_params_total};"
                   f" or {fix}")  # fmt: skip
        raise ConfigError(
            f"{model} with a vocabulary of {plan.vocab_size} ids (data.tokenizer) has {plan.n_params_total:.3g}"
            f" parameters: training needs about {_gib(parameters_only)}{each} for them alone"
            f" ({_parameter_bytes(world_size, sharded)}), more than the {_gib(have)} of {where}: {fix}"
        )
    one_sequence = need(1)
    if one_sequence > have:
        raise ConfigError(
            f"data.sequence_length={plan.sequence_length}: one sequence of {model} needs about {_gib(one_sequence)}"
            f"{each} to train, more than the {_gib(have)} of {where}: choose a shorter data.sequence_length"
        )
    micro = micro_batch_that_fits(plan.shape, vocab_size=plan.vocab_size, n_params=plan.n_params_total,
                                  sequence_length=plan.sequence_length, batch_sequences=plan.batch_sequences,
                                  device_memory_bytes=have, world_size=world_size, sharded=sharded)  # fmt: skip
    raise ConfigError(
        f"optim.micro_batch_sequences: a micro-batch of {plan.micro_batch_sequences} sequences × {plan.sequence_length}"
        f" tokens of {model} needs about {_gib(need(plan.micro_batch_sequences))}{each} to train, more than the"
        f" {_gib(have)} of {where}: set optim.micro_batch_sequences={micro} (gradient accumulation keeps the batch)"
    )
