"""One run across several processes: its ranks, their process group, the wrapped model and the shared checkpoint.

Where the ranks come from: ``sl-train ... processes=K`` starts K processes on this host (:func:`launch_ranks`,
torch.distributed's elastic agent as ``torchrun --standalone`` runs it, after sl-train has checked the config once);
they, like ``torchrun --nproc-per-node=K`` (several hosts without SLURM), see RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT. Several SLURM tasks of one step (hydra-submitit-launcher's
``tasks_per_node``, started by srun) set SLURM_PROCID, SLURM_LOCALID, SLURM_STEP_NUM_TASKS and SLURM_STEP_NUM_NODES,
and meet on the job's first host (rank 0's under srun's default block distribution). Without any of these, a run is
one process, as before.

What makes K processes train exactly the one-process run (tests/train/test_distributed.py checks it):

* each rank trains on its contiguous slice of the same global batch (rank r: sequences ``step·B + r·B/K`` … of
  ``B/K``), so the token stream of a step is the one-process stream;
* each rank's loss is the mean over its slice, and DDP (or FSDP2's reduce-scatter) averages the gradients over
  ranks: every slice predicts the same number of tokens, so the average is the full batch's mean gradient and the
  AdamW update is the one-process update (to float rounding);
* every rank starts from the same seed and restores the same checkpoint, so they stay in step without broadcasts.

Only rank 0 writes records and checkpoints and talks to the tracker; every rank evaluates (FSDP2's forward needs
them all; the eval suite is small next to training).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from scaling_lab.errors import ConfigError
from scaling_lab.model.hardware import shards_parameters

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Ranks:
    """This process's place in a run: its rank among ``world_size`` processes, and on its host."""

    rank: int = 0
    """Global rank; rank 0 writes the record and checkpoints."""
    world_size: int = 1
    """Processes that train the run together (1: no process group)."""
    local_rank: int = 0
    """Rank on this host: the CUDA device index it trains on."""
    local_world_size: int = 1
    """Processes of the run on this host: they share its CPU cores."""
    rendezvous: str = "env://"
    """Where the ranks meet (``init_process_group``'s init_method): torchrun's MASTER_ADDR and MASTER_PORT, or
    ``tcp://<first host>:<port>`` for SLURM tasks."""

    @property
    def distributed(self) -> bool:
        """Whether several processes train the run."""
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Whether this is rank 0."""
        return self.rank == 0

    def batch_slice(self, step: int, batch_sequences: int) -> tuple[int, int]:
        """(first sequence, count) of this rank's contiguous share of step ``step``'s global batch."""
        per_rank = batch_sequences // self.world_size
        return step * batch_sequences + self.rank * per_rank, per_rank


SINGLE = Ranks()
"""One process: the run as it always was."""


def ranks_from_environment(environ: Mapping[str, str] | None = None) -> Ranks:
    """The ranks the launcher gave this process: torchrun's variables, else those of several SLURM tasks of one
    step (:func:`slurm_ranks`), else :data:`SINGLE`."""
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ and int(environ.get("SLURM_STEP_NUM_TASKS", "1")) > 1:
        return slurm_ranks(environ)
    if "WORLD_SIZE" not in environ:
        return SINGLE
    try:
        ranks = Ranks(rank=int(environ["RANK"]), world_size=int(environ["WORLD_SIZE"]),
                      local_rank=int(environ.get("LOCAL_RANK", "0")),
                      local_world_size=int(environ.get("LOCAL_WORLD_SIZE", "1")))  # fmt: skip
    except (KeyError, ValueError):
        raise ConfigError("the environment sets WORLD_SIZE but not an integer RANK (and LOCAL_RANK): launch the"
                          " processes with torchrun, or unset WORLD_SIZE for a one-process run") from None  # fmt: skip
    if not 0 <= ranks.rank < ranks.world_size:
        raise ConfigError(f"RANK={ranks.rank} is outside WORLD_SIZE={ranks.world_size}: launch with torchrun")
    return ranks


# Ports SLURM tasks meet on, when MASTER_PORT is unset: one per job, drawn from its id as submitit's
# TorchDistributedEnvironment does, above the registered ports and below Linux's ephemeral range (32768+ by default
# is where outgoing connections take theirs; a clash there only costs a retry of the job).
SLURM_PORTS = (20000, 60000)


def slurm_ranks(environ: Mapping[str, str]) -> Ranks:
    """The ranks of several SLURM tasks of one srun step (submitit's ``tasks_per_node``; ``srun -n K``)."""
    from submitit.slurm.slurm import _parse_node_list

    world, nodes = int(environ["SLURM_STEP_NUM_TASKS"]), int(environ.get("SLURM_STEP_NUM_NODES", "1"))
    nodelist = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST") or "localhost"
    low, high = SLURM_PORTS
    port = int(environ.get("MASTER_PORT") or low + int(environ.get("SLURM_JOB_ID", "0")) % (high - low))
    return Ranks(rank=int(environ["SLURM_PROCID"]), world_size=world, local_rank=int(environ.get("SLURM_LOCALID", "0")),
                 local_world_size=max(1, world // nodes),
                 rendezvous=f"tcp://{_parse_node_list(nodelist)[0]}:{port}")  # fmt: skip


def planned_ranks(processes: int, environ: Mapping[str, str] | None = None) -> Ranks:
    """The ranks a run with the ``processes`` setting will have: those a launcher already gave this process
    (torchrun, SLURM tasks), else ``processes`` on this host (:func:`launch_ranks` starts them). ConfigError when
    both ask for a number and the numbers differ."""
    ranks = ranks_from_environment(environ)
    if not ranks.distributed:
        return Ranks(world_size=processes, local_world_size=processes)
    if processes not in (1, ranks.world_size):
        raise ConfigError(f"processes={processes}, but torchrun or SLURM started {ranks.world_size} processes for this"
                          " run: leave processes at 1 under a launcher that starts the ranks")  # fmt: skip
    return ranks


def check_processes(ranks: Ranks, requested_device: str, *, jobs_at_once: int = 1) -> None:
    """ConfigError unless the ``ranks`` of a run can train here, one device each: no Apple GPU (no collective
    backend), no single GPU named (rank r takes cuda:LOCAL_RANK), as many CUDA devices as ranks on this host, and one
    grid point at a time (``jobs_at_once``: two runs would take the same devices)."""
    if not ranks.distributed:
        return
    if requested_device == "mps":
        raise ConfigError("device=mps cannot train across processes (no collective backend): use one process")
    if requested_device.startswith("cuda:"):
        raise ConfigError(f"device={requested_device} names one GPU, but {ranks.world_size} processes train on one GPU"
                          " each (cuda:LOCAL_RANK): set device=cuda, or narrow CUDA_VISIBLE_DEVICES")  # fmt: skip
    if training_device(requested_device, ranks).type == "cuda" and ranks.local_world_size > torch.cuda.device_count():
        raise ConfigError(f"{ranks.local_world_size} processes on this host need one GPU each, and it has"
                          f" {torch.cuda.device_count()}: set processes ≤ {torch.cuda.device_count()}")  # fmt: skip
    if jobs_at_once > 1:
        raise ConfigError(f"{ranks.world_size} processes train each run, one device each, and the launcher runs"
                          f" {jobs_at_once} grid points at once on the same devices: run them one at a time"
                          " (hydra.launcher.n_jobs=1, or the default launcher)")  # fmt: skip


def launch_ranks(entry: Callable[..., T], args: tuple, processes: int) -> T:
    """``entry(*args)`` run by ``processes`` new processes on this host, as the ranks of one run, and rank 0's result.

    The processes are started as ``torchrun --standalone`` starts them (torch.distributed's elastic agent: a c10d
    rendezvous on a free local port, RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set, no restarts),
    each a fresh interpreter (spawn: CUDA cannot be forked). The agent's per-rank files live in a temporary folder
    that is removed afterwards. A rank that raises ends the others; the agent then raises ChildFailedError naming
    it and its traceback."""
    import tempfile
    import uuid

    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    with tempfile.TemporaryDirectory(prefix="scaling_lab_ranks_") as log_dir:
        config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=processes, run_id=str(uuid.uuid4()),
                              rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, start_method="spawn",
                              logs_specs=DefaultLogsSpecs(log_dir=log_dir))  # fmt: skip
        return elastic_launch(config, entry)(*args)[0]


def check_batch_splits(batch_sequences: int, ranks: Ranks) -> None:
    """ConfigError unless the global batch splits into equal shares, one per rank (equal shares make the average of
    the ranks' gradients the full batch's gradient)."""
    if batch_sequences % ranks.world_size:
        raise ConfigError(f"optim.batch_tokens gives {batch_sequences} sequences per step, which do not split evenly"
                          f" over {ranks.world_size} processes: choose a batch of a multiple of {ranks.world_size}"
                          " sequences, or another number of processes")  # fmt: skip


def training_device(requested: str, ranks: Ranks) -> torch.device:
    """The device of one rank: ``cuda:LOCAL_RANK`` on a CUDA host (one GPU per process), else the CPU
    (:func:`check_processes` has refused the devices ranks cannot share)."""
    cuda = torch.cuda.is_available() if requested == "auto" else requested.startswith("cuda")
    return torch.device("cuda", ranks.local_rank) if cuda else torch.device("cpu")


@contextmanager
def process_group(ranks: Ranks, device: torch.device) -> Iterator[None]:
    """Join the run's process group for the ``with`` block (nothing for one process): NCCL between GPUs, gloo on
    the CPU."""
    if not ranks.distributed:
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    backend, device_id = ("nccl", device) if device.type == "cuda" else ("gloo", None)
    dist.init_process_group(
        backend, init_method=ranks.rendezvous, rank=ranks.rank, world_size=ranks.world_size, device_id=device_id
    )
    try:
        yield
    finally:
        dist.destroy_process_group()


def wait_for_all(ranks: Ranks) -> None:
    """Return once every rank got here (after training: rank 0's last record is then on disk for every rank)."""
    if ranks.distributed:
        dist.barrier()


def agreed(value: Any, ranks: Ranks) -> Any:
    """Rank 0's ``value`` on every rank (what rank 0 decided: train the point, or not)."""
    if not ranks.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_over_ranks(value: float, ranks: Ranks, device: torch.device) -> float:
    """The mean of ``value`` over the ranks (each rank's loss over its equal share: the global batch's loss), the
    same on every rank, so that they agree when to stop."""
    if not ranks.distributed:
        return value
    total = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return float(total) / ranks.world_size


def parallelize(model: torch.nn.Module, ranks: Ranks, *, n_params: int, fsdp_min_params: int) -> torch.nn.Module:
    """The module that trains ``model`` across ranks: ``model`` itself for one process; FSDP2 (``fully_shard`` of
    every transformer block, then of the whole model, in place) from ``fsdp_min_params`` parameters; DDP below
    (``hardware.shards_parameters``: the memory check reads the same rule)."""
    if not ranks.distributed:
        return model
    if not shards_parameters(n_params, world_size=ranks.world_size, fsdp_min_params=fsdp_min_params):
        return torch.nn.parallel.DistributedDataParallel(model)
    from torch.distributed.fsdp import fully_shard

    for block in transformer_blocks(model):
        fully_shard(block)
    fully_shard(model)
    return model


def transformer_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated decoder layers of a ``transformers`` causal LM (sharded one by one, so that FSDP2 gathers one
    layer's weights at a time)."""
    layers = getattr(getattr(model, "model", model), "layers", None)
    return list(layers) if isinstance(layers, torch.nn.ModuleList) else []


def sharded(model: torch.nn.Module) -> bool:
    """Whether ``model`` is sharded by FSDP2 (its state then needs gathering before it is saved)."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """The model's and optimizer's state as one process holds them (full tensors; the optimizer's keyed by
    parameter index), whatever the sharding: a checkpoint written by K processes resumes with any number."""
    if not sharded(model):
        return model.state_dict(), optimizer.state_dict()
    from torch.distributed.checkpoint import state_dict as dcp

    # an evaluation (a forward without backward) leaves the root's parameters gathered: the optimizer's are the shards
    model.reshard()
    options = dcp.StateDictOptions(full_state_dict=True, cpu_offload=True)  # gathered to rank 0's memory
    by_name = dcp.get_optimizer_state_dict(model, optimizer, options=options)
    model_state = dcp.get_model_state_dict(model, options=options)
    if not by_name:  # the other ranks gather nothing: rank 0 writes
        return model_state, by_name
    index = {name: i for i, name in enumerate(parameter_names(model, optimizer))}
    optimizer_state = {"state": {index[name]: value for name, value in by_name["state"].items()},
                       "param_groups": [{**group, "params": [index[name] for name in group["params"]]}
                                        for group in by_name["param_groups"]]}  # fmt: skip
    return model_state, optimizer_state


def load_full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, model_state: dict,
                    optimizer_state: dict) -> None:  # fmt: skip
    """Load what :func:`full_state` returned (on every rank) into ``model`` and ``optimizer``."""
    if not sharded(model):
        model.load_state_dict(model_state)
        optimizer.load_state_dict(optimizer_state)
        return
    from torch.distributed.checkpoint import state_dict as dcp

    names = parameter_names(model, optimizer)
    by_name = {"state": {names[i]: value for i, value in optimizer_state["state"].items()},
               "param_groups": [{**group, "params": [names[i] for i in group["params"]]}
                                for group in optimizer_state["param_groups"]]}  # fmt: skip
    options = dcp.StateDictOptions(full_state_dict=True)
    dcp.set_model_state_dict(model, model_state, options=options)
    dcp.set_optimizer_state_dict(model, optimizer, by_name, options=options)


def parameter_names(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The name of each optimizer parameter in the order ``optimizer.state_dict()`` numbers them."""
    name_of = {id(parameter): name for name, parameter in model.named_parameters()}
    return [name_of[id(parameter)] for group in optimizer.param_groups for parameter in group["params"]]
