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
from scaling_lab.model.hardware import TRAINING_BYTES_PER_PARAM, micro_batch_that_fits
from scaling_lab.model.shapes import ModelConfig
from scaling_lab.results import run_dir
from scaling_lab.train.checkpoint import CHECKPOINT_NAME, check_run_checkpoint
from scaling_lab.train.distributed import check_batch_splits, check_processes, planned_ranks
from scaling_lab.train.placement import check_device_available, footprint_of, memory_bytes
from scaling_lab.train.plan import TrainPlan, make_plan


def check_can_start(config: RunConfig, *, on_this_host: bool = True, jobs_at_once: int = 1) -> None:
    """ScalingLabError unless the run can start: its folders are writable and its checkpoint (if any) is trusted;
    and, when it runs on this host (``on_this_host``; not for a SLURM array submitted from here), its device exists,
    it asks for no more CPU threads than there are cores, its model fits the device's memory, and its batch splits
    over the processes that train it together."""
    config.paths.check_writable()
    check_run_checkpoint(run_dir(config.paths.results_dir, config.sweep, config.run_id()) / CHECKPOINT_NAME)
    if not on_this_host:
        return
    check_device_available(config.device)
    ranks = planned_ranks(config.processes)
    check_processes(ranks, config.device, jobs_at_once=jobs_at_once)
    cores = usable_cores()
    if config.threads is not None and config.threads > cores:  # each thread reserves a stack: 1e5 of them crash
        raise ConfigError(f"threads={config.threads} is more than the {cores} cores this process may use: set"
                          f" threads={cores} or null (all cores / parallel jobs)")  # fmt: skip
    vocab_size = planned_vocab_size(config.data.tokenizer)
    if vocab_size is not None:  # a pretrained hf tokenizer's size is known once it is loaded: run_point checks then
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the run's own plan shows its warnings, once
            plan = make_plan(config, vocab_size=vocab_size)
        check_fits_memory(config, plan)
        check_batch_splits(plan.batch_sequences, ranks)


def model_setting(model: ModelConfig) -> str:
    """The setting that chose the model's size, as the user wrote it."""
    if model.preset is not None:
        return f"model.preset={model.preset}"
    if model.target_n is not None:
        return f"model.target_n={model.target_n:g}"
    return f"model.n_layers={model.n_layers} model.width={model.width}"


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GiB"


def check_fits_memory(config: RunConfig, plan: TrainPlan) -> None:
    """ConfigError unless the run's estimated peak memory (``hardware.training_memory_bytes``: an upper bound) fits
    the whole memory of its device. Only what cannot fit at all is refused; the estimate names the setting to
    change: the model or vocabulary, the sequence length, or the micro-batch (gradient accumulation keeps the batch).
    """
    have, where = memory_bytes(config.device)
    need = footprint_of(plan).memory_bytes
    if have is None or need <= have:
        return
    model = model_setting(config.model)
    parameters_only = footprint_of(replace(plan, micro_batch_sequences=0)).memory_bytes
    if parameters_only > have:
        vocabulary_heavy = plan.n_params_total - plan.n_params_nonembed > plan.n_params_nonembed
        fix = "choose a smaller data.tokenizer.vocab_size" if vocabulary_heavy else "choose a smaller model"
        raise ConfigError(
            f"{model} with a vocabulary of {plan.vocab_size} ids (data.tokenizer) has {plan.n_params_total:.3g}"
            " parameters: training needs"
            f" about {_gib(parameters_only)} for them alone ({TRAINING_BYTES_PER_PARAM} bytes each: weights, gradients,"
            f" AdamW moments), more than the {_gib(have)} of {where}: {fix}"
        )
    one_sequence = footprint_of(replace(plan, micro_batch_sequences=1)).memory_bytes
    if one_sequence > have:
        raise ConfigError(
            f"data.sequence_length={plan.sequence_length}: one sequence of {model} needs about {_gib(one_sequence)}"
            f" to train, more than the {_gib(have)} of {where}: choose a shorter data.sequence_length"
        )
    micro = micro_batch_that_fits(plan.shape, vocab_size=plan.vocab_size, n_params=plan.n_params_total,
                                  sequence_length=plan.sequence_length, batch_sequences=plan.batch_sequences,
                                  device_memory_bytes=have)  # fmt: skip
    raise ConfigError(
        f"optim.micro_batch_sequences: a micro-batch of {plan.micro_batch_sequences} sequences × {plan.sequence_length}"
        f" tokens of {model} needs about {_gib(need)} to train, more than the {_gib(have)} of {where}: set"
        f" optim.micro_batch_sequences={micro} (gradient accumulation keeps the batch)"
    )
