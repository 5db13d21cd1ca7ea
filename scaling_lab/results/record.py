"""The run record: one frozen, versioned description of one training run.

A record is what the trainer writes, the store keeps as ``run.json`` and the fitter reads back as table rows.
It never imports torch. Every field is checked on construction (``__post_init__``, by the package's one coercion
engine, :mod:`scaling_lab.typed`): numbers are coerced to plain ``int``/``float`` (numpy scalars are accepted),
wrong types, negative sizes, an unknown status or a NaN loss in a finished record raise
:class:`~scaling_lab.errors.TableError` naming the field. :meth:`RunRecord.from_dict` adds the source file to the
message and also rejects unknown fields and records written by a newer schema.

The config is redacted (:func:`~scaling_lab.redact.scrub_secrets`) before it is stored, and so are the
free-text fields (``reason`` quotes an exception; ``data_mix`` is a name from the config) with the same secret values:
those the process knows of and those under credential-named keys of the config. No credential reaches a record.

JSON note: non-finite floats (a diverged run's NaN or inf loss) are written as Python's ``json`` writes them
(``NaN``, ``Infinity``) and read back unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, get_args

from scaling_lab.errors import TableError
from scaling_lab.redact import config_secrets, known_secrets, scrub_secrets, scrub_text
from scaling_lab.typed import RECORD, coerce_fields, from_mapping

SCHEMA_VERSION = 5
"""Bump when a field is added, removed or changes meaning; :meth:`RunRecord.from_dict` refuses newer versions.

5: ``world_size``, the processes that trained the run together (one data-parallel run); earlier records read as 1.

4: mixtures of experts. A record carries ``n_experts``, ``experts_per_token``, ``expert_ffn_size``, ``granularity`` and
the active counts ``n_params_active`` / ``n_params_active_nonembed`` (the parameters that touch each token), and a
point's ``flops_6nd`` is 6·N_active·D; ``n_params_total`` / ``n_params_nonembed`` stay every stored parameter. Every
earlier record is dense: it reads with one expert and active counts equal to its totals, which is what it measured.

3: every point carries each eval set's loss and bits per byte (``losses``, ``bpb``, with the union as ``all``) and
the record the hash of the eval suite they were scored on (``eval_suite_hash``); ``loss`` is the union's loss. Earlier
records scored each mix on its own held-out text: they read with empty ``losses``/``bpb`` and no suite hash.

2: ``config_hash`` is the hash of ``config`` as stored, so a reader can recompute it
(:data:`CONFIG_HASHED_FROM_SCHEMA`). In version 1 records it hashed the config before rule-derived values (learning
rate, batch, warmup) were filled in, which the record does not keep."""

CONFIG_HASHED_FROM_SCHEMA = 2
"""The first schema version whose ``config_hash`` is :func:`~scaling_lab.results.provenance.run_config_hash` of the
stored ``config``."""

RunStatus = Literal["running", "finished", "failed", "diverged"]
STATUSES: tuple[str, ...] = get_args(RunStatus)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunPoint:
    """One (N, D) measurement of a run: its final evaluation at D tokens.

    A cosine or constant run has one point (its whole budget); a warmup–stable–decay run has one per cooldown,
    each at its own D (Hägele et al. 2024).
    """

    n_tokens: int
    """D: training tokens seen when this point was evaluated (realized, not planned)."""
    loss: float
    """Mean eval loss (nats/token) on the eval suite's union at D: the number fitted by default."""
    flops_6nd: float
    """Training compute to reach D as 6·N·D, N = n_params_active (n_params_total for a dense model; Kaplan et al.
    2020, §2.1)."""
    flops_exact: float
    """Training compute to reach D counting attention and the output head (Hoffmann et al. 2022, App. F) and, for
    an MoE, the router and the active experts."""
    train_loss: float | None = None
    """Training loss at D (recorded, never fitted by default); None when not measured."""
    losses: dict[str, float] = dataclasses.field(default_factory=dict)
    """Mean eval loss (nats/token) on each set of the eval suite and on their union (``all``, equal to ``loss``)."""
    bpb: dict[str, float] = dataclasses.field(default_factory=dict)
    """Bits per UTF-8 byte of the scored text, for each eval set and the union (``all``): comparable across
    tokenizers."""

    def __post_init__(self) -> None:
        coerce_fields(self, RECORD)
        _check_not_negative(self, "n_tokens", "flops_6nd", "flops_exact")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CurvePoint:
    """One intermediate evaluation of a run: the loss curve Chinchilla approach 1 reads."""

    n_tokens: int
    """Training tokens seen at this evaluation."""
    flops_6nd: float
    """Training compute so far as 6·N·D (Kaplan et al. 2020, §2.1)."""
    flops_exact: float
    """Training compute so far with attention and the output head (Hoffmann et al. 2022, App. F)."""
    loss: float
    """Mean eval loss (nats/token) on the fixed held-out tokens."""
    train_loss: float | None = None
    """Training loss around this evaluation; None when not measured."""
    losses: dict[str, float] = dataclasses.field(default_factory=dict)
    """Mean eval loss (nats/token) on each eval set's curve subset and on their union (``all``)."""
    bpb: dict[str, float] = dataclasses.field(default_factory=dict)
    """Bits per UTF-8 byte of each eval set's curve subset and of their union (``all``)."""

    def __post_init__(self) -> None:
        coerce_fields(self, RECORD)
        _check_not_negative(self, "n_tokens", "flops_6nd", "flops_exact")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunRecord:
    """Everything about one training run that a sweep, a fit or a reader needs, as stored in ``run.json``."""

    run_id: str
    """Unique name of the run inside its sweep; a directory name (no path separators)."""
    sweep: str
    """The sweep or experiment the run belongs to (its wandb group); a directory name."""
    status: RunStatus
    """"running" while training, then "finished", "failed" (an exception) or "diverged" (NaN/inf or blow-up)."""
    config: dict[str, Any]
    """The resolved run config as plain JSON values, credentials redacted."""
    config_hash: str
    """Hash of ``config`` as stored (:func:`scaling_lab.results.provenance.run_config_hash`, which leaves out where
    the run wrote and logged): same hash, same computation. The store recomputes it on reading."""
    seed: int
    """Seed of model init (the data order is the config's data.seed)."""
    data_mix: str
    """Name of the data mix; the fitter groups rows by it."""
    data_mix_hash: str
    """Hash of the data mix's sources, weights, tokenizer and eval split, from the data layer."""
    n_params_total: int
    """N with embeddings (and the output head when untied), counted analytically and checked on the module; an
    MoE's every expert."""
    n_params_nonembed: int
    """N without the token embedding and output head (Kaplan et al. 2020); an MoE's every expert."""
    tied_embeddings: bool
    """Whether input embedding and output head share weights (counted once in n_params_total when tied)."""
    n_tokens_planned: int
    """The token budget D asked for."""
    n_tokens: int
    """Realized D: the tokens seen at the last point (a finished record's last point's n_tokens)."""
    points: list[RunPoint]
    """Final measurements, increasing in n_tokens: one per run, or one per cooldown of a WSD run."""
    curve: list[CurvePoint]
    """Intermediate evaluations in the order taken (non-decreasing n_tokens)."""
    tokens_per_second: float
    """Training throughput over the run's wall time."""
    flops_per_second: float
    """Achieved training FLOP/s (exact FLOPs over wall time)."""
    device: str
    """Where the run trained, e.g. "cpu" or "cuda:0 (NVIDIA H100 80GB HBM3)"."""
    versions: dict[str, str]
    """Library versions: python, torch, transformers, datasets, scaling_lab."""
    wall_time_s: float
    """Wall-clock seconds of training and evaluation."""
    created_at: str
    """When the run started, ISO-8601 in UTC (e.g. "2026-11-22T07:40:00+00:00")."""
    finished_at: str | None = None
    """When the run ended (finished, failed or diverged), ISO-8601 in UTC; None while running."""
    mfu: float | None = None
    """Model FLOPs utilization, flops_per_second over the device's peak; None when the peak is unknown."""
    git_commit: str | None = None
    """Commit of the scaling_lab checkout that ran; None outside a git checkout."""
    diverged_at_step: int | None = None
    """Optimizer step at which divergence was detected; None unless status is "diverged"."""
    reason: str = ""
    """Why the run failed or diverged (one line); "" otherwise."""
    n_params_active: int | None = None
    """Parameters that touch each token: an MoE's top-k experts, router and shared parts with the vocabulary
    matrices. None on construction means dense (filled in as n_params_total)."""
    n_params_active_nonembed: int | None = None
    """n_params_active without the vocabulary matrices. None on construction means dense (n_params_nonembed)."""
    n_experts: int = 1
    """E: routed experts per layer (1: dense)."""
    experts_per_token: int = 1
    """k: experts each token is routed to (top-k)."""
    expert_ffn_size: int | None = None
    """Each expert's SwiGLU hidden size (the dense MLP's for a dense model); None in records older than schema 4."""
    granularity: float = 1.0
    """G = dense MLP hidden size / expert hidden size (Krajewski et al. 2024); 1 for a dense model."""
    eval_suite_hash: str | None = None
    """Hash of the eval suite's text (the data layer's ``suite_hash``): runs with different hashes were scored on
    different text and are never pooled. None in records older than schema 3."""
    world_size: int = 1
    """Processes that trained the run together, each on its share of every batch (DDP or FSDP2); 1 for one process.
    ``device`` names rank 0's device, ``tokens_per_second`` is the whole run's and ``mfu`` is per device."""
    schema_version: int = SCHEMA_VERSION
    """Version of this record's layout (see SCHEMA_VERSION)."""

    def __post_init__(self) -> None:
        coerce_fields(self, RECORD)
        for active, stored in (
            ("n_params_active", "n_params_total"),
            ("n_params_active_nonembed", "n_params_nonembed"),
        ):
            if getattr(self, active) is None:  # dense (every record before schema 4): every parameter is active
                object.__setattr__(self, active, getattr(self, stored))
        secrets = known_secrets() | config_secrets(self.config)
        object.__setattr__(self, "config", scrub_secrets(self.config, secrets))
        for name in ("reason", "data_mix"):  # free text: an exception's message, a name from the config
            object.__setattr__(self, name, scrub_text(getattr(self, name), secrets))
        _check_record(self)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain JSON values (a deep copy)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "run record") -> RunRecord:
        """Rebuild and validate a record from :meth:`to_dict`'s output; errors name ``source`` and the field."""
        try:
            if isinstance(data, Mapping):
                _check_schema_version(data.get("schema_version"))
            return from_mapping(cls, data, "", wording=RECORD)
        except TableError as error:
            raise TableError(f"{source}: {error}") from error

    @property
    def final_loss(self) -> float | None:
        """Eval loss of the last point (the run's full budget); None when the run has no point."""
        return self.points[-1].loss if self.points else None


# ----------------------------------------------------------------------------------------------------------
# Validation


def _check_schema_version(version: Any) -> None:
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise TableError(
            f"schema_version={version} is newer than this scaling_lab reads ({SCHEMA_VERSION}): "
            "upgrade scaling_lab to read it"
        )


def _check_not_negative(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and not value >= 0:  # also catches NaN
            raise TableError(f"field {name}={value} must be a non-negative number")


def check_directory_name(field: str, value: str) -> None:
    """Raise TableError unless ``value`` can be one directory level of the store (run_id, sweep)."""
    if not value or value in {".", ".."} or "/" in value or "\\" in value or "\0" in value:
        raise TableError(
            f"field {field}={value!r} is not a valid directory name: use a non-empty name without '/' or '\\'"
        )


def _check_utc(field: str, value: str | None) -> None:
    if value is None:
        return
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise TableError(f"field {field}={value!r} is not ISO-8601: write e.g. 2026-11-22T07:40:00+00:00") from None
    offset = moment.utcoffset()
    if offset is None or offset.total_seconds() != 0:
        raise TableError(f"field {field}={value!r} must be in UTC: add the +00:00 offset")


def _check_record(record: RunRecord) -> None:
    _check_schema_version(record.schema_version)
    if record.schema_version < 1:
        raise TableError(f"field schema_version={record.schema_version} must be ≥ 1")
    check_directory_name("run_id", record.run_id)
    check_directory_name("sweep", record.sweep)
    if not record.config_hash:
        raise TableError("field config_hash is empty: hash the resolved config (provenance.config_hash)")
    _check_not_negative(
        record,
        "n_params_nonembed",
        "n_tokens",
        "tokens_per_second",
        "flops_per_second",
        "wall_time_s",
        "mfu",
        "diverged_at_step",
    )
    if record.world_size < 1:
        raise TableError(f"field world_size={record.world_size} must be ≥ 1 (the processes that trained the run)")
    if record.n_params_total <= 0:
        raise TableError(f"field n_params_total={record.n_params_total} must be positive")
    if record.n_params_nonembed > record.n_params_total:
        raise TableError(
            f"field n_params_nonembed={record.n_params_nonembed} exceeds n_params_total={record.n_params_total}"
        )
    for active, stored in (("n_params_active", "n_params_total"), ("n_params_active_nonembed", "n_params_nonembed")):
        if not 0 < getattr(record, active) <= getattr(record, stored):
            raise TableError(f"field {active}={getattr(record, active)} must lie in (0, {stored}="
                             f"{getattr(record, stored)}]: active parameters are some of the stored ones")  # fmt: skip
    if not 1 <= record.experts_per_token <= record.n_experts:
        raise TableError(f"field experts_per_token={record.experts_per_token} must lie in 1..n_experts="
                         f"{record.n_experts}")  # fmt: skip
    if not record.granularity > 0:
        raise TableError(f"field granularity={record.granularity} must be positive (1 for a dense model)")
    if record.n_tokens_planned <= 0:
        raise TableError(f"field n_tokens_planned={record.n_tokens_planned} must be positive")
    _check_utc("created_at", record.created_at)
    _check_utc("finished_at", record.finished_at)
    for index in range(1, len(record.points)):
        if record.points[index].n_tokens <= record.points[index - 1].n_tokens:
            raise TableError(f"field points[{index}].n_tokens must increase: order the points by n_tokens")
    for index in range(1, len(record.curve)):
        if record.curve[index].n_tokens < record.curve[index - 1].n_tokens:
            raise TableError(f"field curve[{index}].n_tokens goes backwards: order the curve by n_tokens")
    _check_status(record)


def _check_status(record: RunRecord) -> None:
    status = record.status
    if (status == "diverged") != (record.diverged_at_step is not None):
        raise TableError(
            f"field diverged_at_step={record.diverged_at_step} with status={status!r}: "
            "set it exactly when the status is 'diverged'"
        )
    if status in ("failed", "diverged") and not record.reason:
        raise TableError(f"field reason is empty for status={status!r}: say why the run stopped")
    if (status == "running") != (record.finished_at is None):
        raise TableError(
            f"field finished_at={record.finished_at!r} with status={status!r}: set it exactly when the run has ended"
        )
    if status != "finished":
        return
    if not record.points:
        raise TableError("field points is empty in a finished record: add the final evaluation")
    if record.n_tokens != record.points[-1].n_tokens:
        raise TableError(
            f"field n_tokens={record.n_tokens} differs from the last point's n_tokens={record.points[-1].n_tokens}"
        )
    for name, series in (("points", record.points), ("curve", record.curve)):
        for index, point in enumerate(series):
            if not math.isfinite(point.loss):
                raise TableError(
                    f"field {name}[{index}].loss={point.loss} in a finished record: "
                    "a run with a non-finite loss is 'diverged'"
                )
