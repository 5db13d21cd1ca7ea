"""RunConfig: everything one training run needs, typed and validated.

Component configs live next to their code (config groups mirror code folders): ModelConfig in ``model/``,
DataConfig in ``data/``, BudgetConfig in ``budget.py``, LoggerConfig in ``tracking.py``; OptimConfig and ScheduleConfig
live in ``config/training.py``, because ``train/`` imports this module. Run-level sections (paths, debug) and the run
fields live here.

These dataclasses are keyword-only but *not* frozen: OmegaConf marks a frozen dataclass read-only, and Hydra then
cannot apply command-line overrides to it. Treat them as values all the same; nothing mutates them after
``run_config_from_dict``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from scaling_lab.budget import BudgetConfig
from scaling_lab.config.training import OptimConfig, ScheduleConfig
from scaling_lab.data.config import DataConfig, data_config_from_dict
from scaling_lab.errors import ConfigError
from scaling_lab.model.shapes import ModelConfig
from scaling_lab.redact import known_secrets, looks_secret
from scaling_lab.results.provenance import run_config_hash
from scaling_lab.results.record import check_directory_name
from scaling_lab.tracking import LoggerConfig
from scaling_lab.typed import MISSING, check_seed, from_mapping

DEVICES = ("auto", "cpu", "cuda", "mps")


@dataclass(kw_only=True)
class PathsConfig:
    """Where things are written; spelled once here."""

    results_dir: str = "results"
    """Root of the results store: ``<results_dir>/<sweep>/<run_id>/run.json`` (+ checkpoint, lock)."""
    cache_dir: Optional[str] = None  # noqa: UP045
    """Corpus, token caches and trained tokenizers; null → the data layer's default ($SCALING_LAB_CACHE, else
    ~/.cache/scaling_lab), shared by every run on the machine."""

    def __post_init__(self) -> None:
        if not self.results_dir:
            raise ConfigError("paths.results_dir is empty: give a directory, e.g. paths.results_dir=results")

    def resolved_cache_dir(self) -> Path:
        """cache_dir, or the data layer's default."""
        from scaling_lab.data import default_cache_dir

        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()

    def check_writable(self, *, results: bool = True) -> None:
        """ConfigError unless the cache folder (and, with ``results``, the results folder) can be written here.

        A machine's question, not the config's, so it is asked by the entry points before they start (sl-plan
        writes only to the cache), never in ``__post_init__``: a config is also validated where it does not run."""
        from scaling_lab.outputs import check_output_folder

        if results:
            check_output_folder(self.results_dir, "paths.results_dir")
        # null → $SCALING_LAB_CACHE or ~/.cache/scaling_lab: the message shows the folder it resolved to
        cache_field = "paths.cache_dir" if self.cache_dir else "default paths.cache_dir"
        check_output_folder(self.resolved_cache_dir(), cache_field)


@dataclass(kw_only=True)
class DebugConfig:
    """Switches for debugging and for testing the failure paths with real runs; never part of the hash."""

    crash_at_step: Optional[int] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    """Raise RuntimeError right after this many steps (after any checkpoint there): tests failure + resume."""
    detect_anomaly: bool = False
    """torch.autograd anomaly detection (slow; finds the op that made a NaN)."""
    progress: bool = True
    """Show the tqdm progress bar."""

    def __post_init__(self) -> None:
        if self.crash_at_step is not None and self.crash_at_step < 1:
            raise ConfigError(f"debug.crash_at_step={self.crash_at_step} must be ≥ 1 or null")


@dataclass(kw_only=True)
class RunConfig:
    """One training run: a model of size N trained on D tokens of one data mix."""

    model: ModelConfig = MISSING
    """Model shape (group ``model``)."""
    data: DataConfig = MISSING
    """Data mix, tokenizer, sequence length, eval set (group ``data``)."""
    optim: OptimConfig = MISSING
    """AdamW, batch, clipping (group ``optim``)."""
    schedule: ScheduleConfig = MISSING
    """Learning-rate schedule (group ``schedule``)."""
    budget: BudgetConfig = MISSING
    """Token or FLOP budget (group ``budget``)."""
    logger: LoggerConfig = MISSING
    """wandb or none (group ``logger``)."""
    paths: PathsConfig = MISSING
    """Output and cache directories (group ``paths``)."""
    debug: DebugConfig = MISSING
    """Debug switches (group ``debug``)."""
    sweep: str = "default"
    """Sweep or experiment name: the results sub-folder and the wandb group."""
    seed: int = 0
    """Seeds model init (and nothing else: the data order is data.seed)."""
    device: str = "auto"
    """auto (cuda if present, else cpu), cpu, cuda, cuda:N, or mps."""
    threads: Optional[int] = None  # noqa: UP045
    """torch CPU threads; null → all cores divided by the jobs a parallel launcher runs at once."""
    jobs_per_device: Any = 1  # int ≥ 1 or "auto"; Any because OmegaConf 2.3 structured configs have no Union
    """GPU jobs sharing one device under the local parallel launcher (launcher=local); 1 → never two on one GPU;
    ``auto`` → as many copies of each run as fit its device (scaling_lab/train/placement.py ``jobs_that_fit``)."""
    retry_failed: bool = False
    """Relaunching trains a point whose record says failed (an exception) only when true: a failure is usually a
    bug or a bad setting to fix first. Interrupted points (killed, preempted: still "running") always resume."""
    compile: bool = False
    """torch.compile the training step's model (CUDA, and CPU through inductor's C++ backend, which needs a C++
    compiler): the same losses to float rounding, 1.14–1.21× the eager CPU step at quickstart widths and
    1.14–1.39× at n100k–n3m, after a 20–30 s compile per shape (scripts/bench_train.py --compile). Off by
    default: a short run does not earn the compile back, and the eager path needs no compiler."""
    fsdp_min_params: int = 1_000_000_000
    """A run trained by several processes (torchrun, SLURM tasks: scaling_lab/train/distributed.py) shards its model
    with FSDP2 (``fully_shard``) from this many parameters (total N) and replicates it with DDP below; 0 → always
    shard. Replicated, fp32 weights, gradients and AdamW moments cost 16 bytes per parameter on every device
    (Rajbhandari et al. 2020, ZeRO §3.1): 16 GB at 1B, a fifth of an 80 GB GPU before activations. Sharding them
    moves 1.5× DDP's data per step (ZeRO §7: parameters all-gathered in the forward and backward passes, gradients
    reduce-scattered), so it pays only once the replica crowds out activations. Same maths either way: not hashed."""
    processes: int = 1
    """Processes that train each run together on this host, one device each (DDP, or FSDP2 from fsdp_min_params):
    sl-train starts them (torch.distributed's elastic agent, what ``torchrun --standalone`` runs). 1 → one process,
    or as many as torchrun or SLURM tasks started. The same maths with any number: not hashed."""
    eval_every_tokens: Optional[float] = None  # noqa: UP045
    """Evaluate every this many tokens for the loss curve; null → 10 evaluations per run. The end always evals."""
    curve_eval_tokens: Optional[int] = 65536  # noqa: UP045
    """Eval tokens behind each intermediate loss-curve point, shared evenly by the eval suite's sets: a fixed strided
    subset of each set, the same for every run. Final points (and WSD cooldown points) always use the whole suite.
    Scoring the whole 2^19-token suite ten times cost ~4× the training compute of a 1e5-token run; 2^16 tokens keep
    the curve's standard error near 1.4 % (√8 × the data layer's 0.5 % bound) at an eighth of the cost. null → the
    whole suite."""
    checkpoint_every_tokens: Optional[float] = None  # noqa: UP045
    """Checkpoint every this many tokens; null → 4 per run; 0 → never."""
    divergence_factor: float = 3.0
    """Stop as diverged when the training loss exceeds this × the best loss so far (or is NaN/inf)."""
    grid: dict[str, Any] = field(default_factory=dict)
    """Free-form grid coordinates a sweep file sets (e.g. rank, center_n) for interpolations such as
    ``model.target_n: ${sl.isoflop_n:...}``; not hashed: the values they produce (target_n, budget) are."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.=+-]*", str(self.sweep)):
            raise ConfigError(f"sweep={self.sweep!r} must be a folder name (letters, digits, _ . = + -)")
        check_seed(self.seed, "seed")
        if not (self.device in DEVICES or re.fullmatch(r"cuda:\d+", self.device)):
            raise ConfigError(f"device={self.device!r} is unknown: choose auto, cpu, cuda, cuda:N or mps")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads={self.threads} must be ≥ 1 or null (all cores / parallel jobs)")
        if self.eval_every_tokens is not None and not self.eval_every_tokens > 0:
            raise ConfigError(f"eval_every_tokens={self.eval_every_tokens} must be > 0 or null")
        check_directory_name("sweep", self.sweep)  # results/<sweep>/ must stay inside the results root
        if looks_secret(self.sweep, known_secrets()):  # a folder name in every path printed and stored: unredactable
            raise ConfigError("sweep=<redacted> holds a credential (a token's shape, or the value of a credential-named"
                              " environment variable or argument); the sweep names folders and the wandb group:"
                              " choose a plain name")  # fmt: skip
        if self.jobs_per_device != "auto" and not (
            isinstance(self.jobs_per_device, int) and not isinstance(self.jobs_per_device, bool)
            and self.jobs_per_device >= 1
        ):  # fmt: skip
            raise ConfigError(f"jobs_per_device={self.jobs_per_device!r} must be an integer ≥ 1 or auto"
                              " (as many runs per GPU as fit)")  # fmt: skip
        if self.curve_eval_tokens is not None and not self.curve_eval_tokens > 0:
            raise ConfigError(f"curve_eval_tokens={self.curve_eval_tokens} must be > 0 or null (the whole eval set)")
        if self.checkpoint_every_tokens is not None and self.checkpoint_every_tokens < 0:
            raise ConfigError(f"checkpoint_every_tokens={self.checkpoint_every_tokens} must be ≥ 0 or null")
        if isinstance(self.fsdp_min_params, bool) or self.fsdp_min_params < 0:
            raise ConfigError(f"fsdp_min_params={self.fsdp_min_params} must be an integer ≥ 0 (0: always shard)")
        if isinstance(self.processes, bool) or self.processes < 1:
            raise ConfigError(f"processes={self.processes} must be an integer ≥ 1 (the processes that train one run)")
        if not self.divergence_factor > 1:
            raise ConfigError(f"divergence_factor={self.divergence_factor} must be > 1 (3 is usual)")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-able data (a dense model's without the expert fields: ModelConfig.to_dict)."""
        return {**dataclasses.asdict(self), "model": self.model.to_dict()}

    def config_hash(self) -> str:
        """Hash of what changes results (every field but ``scaling_lab.results.provenance.UNHASHED``)."""
        return run_config_hash(self.to_dict())

    def run_id(self) -> str:
        """Readable, stable id: model name, budget, and the config hash (``n7k-tokens1e+05-<hash>``; an MoE's model
        name adds its experts, ``n7k-e8k1-...``)."""
        return (
            f"{self.model.name()}-{self.budget.kind.replace('_', '')}{self.budget.value:.2g}-{self.config_hash()[:10]}"
        )


SECTIONS: dict[str, Any] = {
    "model": ModelConfig,
    "optim": OptimConfig,
    "schedule": ScheduleConfig,
    "budget": BudgetConfig,
    "logger": LoggerConfig,
    "paths": PathsConfig,
    "debug": DebugConfig,
}


def run_config_from_dict(mapping: Mapping[str, Any]) -> RunConfig:
    """Build a validated RunConfig from plain data (``OmegaConf.to_container(cfg, resolve=True)``)."""
    values = dict(mapping)
    values.pop("hydra", None)
    for name, cls in SECTIONS.items():
        values[name] = from_mapping(cls, values.get(name), name)
    if "data" not in values:
        raise ConfigError("data is missing: choose a data mix, e.g. data=embedded")
    values["data"] = data_config_from_dict(values["data"])
    return from_mapping(RunConfig, values, "")
