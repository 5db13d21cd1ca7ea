"""The verification slice of a fit: the sweep's recipe at a larger budget, a few sizes, several seeds.

A slice is trained with **the same recipe** as the sweep the fit came from: the resolved configs of the sweep's
records, with only the budget (the target, in the fit's FLOP accounting), the model size (snapped to the sweep's
shape family) and the seed changed. Per-size rules stay rules: where the records' learning rate, batch, β2,
micro-batch or warmup are what ``train/rules.py`` gives for each record, the slice gets the rule at its own size
and budget; where they are one value across the sweep, it gets that value. A warmup–stable–decay recipe trains
plain runs to the target (its one cooldown at the end, no branched cooldowns): a verification point is a single
budget. The slice is a sweep file (``experiment``) that ``sl-train -m`` launches with any launcher, so a rerun skips
the points already finished.

The shape family is read from the records: presets (``model.preset``; the nearest preset), the target-N rule
(``model.target_n``; the shapes that rule gives), or explicit shapes (``model.n_layers/width/n_heads``, as the
isoFLOP sweep files list them): widths on the records' width lattice (multiples of their greatest common divisor),
the depth of the nearest recorded width and its heads (fewer where they do not divide the width into even halves).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scaling_lab.budget import flops_6nd, flops_per_token_6n
from scaling_lab.config.schema import run_config_from_dict
from scaling_lab.errors import EXIT_POINTS_FAILED, EXIT_USER_ERROR, ConfigError, ReportedError, TableError
from scaling_lab.fitting.approach2 import CURVES
from scaling_lab.model.shapes import (
    PRESETS,
    ModelConfig,
    Shape,
    flops_per_token_exact,
    n_params_nonembed,
    n_params_total,
    shape_for_target_n,
)
from scaling_lab.results import RunRecord, read_record, record_path
from scaling_lab.results.provenance import UNHASHED
from scaling_lab.results.store import scan_records, warn_skipped
from scaling_lab.train.plan import make_plan
from scaling_lab.typed import from_mapping

SHAPE_FIELDS = ("preset", "target_n", "n_layers", "width", "n_heads")
"""Model fields that pick a size; every other model field is part of the recipe."""
RULE_FIELDS = {
    "optim.lr": lambda plan: plan.lr,
    "optim.batch_tokens": lambda plan: plan.tokens_per_step,
    "optim.beta2": lambda plan: plan.beta2,
    "optim.micro_batch_sequences": lambda plan: plan.micro_batch_sequences,
    "schedule.warmup_tokens": lambda plan: plan.warmup_tokens,
}
"""Settings a record stores resolved (train/run.py ``resolved_config``) and the plan value each comes from."""
VARYING = {"budget", "seed", "schedule.cooldown_budgets"} | {f"model.{name}" for name in SHAPE_FIELDS}
"""What a sweep varies besides the rules: not part of the recipe."""
FAMILY_SPAN = (1e-2, 1e3)
"""Family members are listed from the smallest recorded N × 1e-2 to the largest × 1e3: a target 10-100× above the
sweep moves N_opt by well under 1e3 (N_opt ∝ C^a, a ≤ 1)."""
BUDGET_KINDS = {"flops_exact": ("flops_exact", "total"), "flops_6nd": ("flops_6nd", "total")}
"""The fit's C column → the slice's budget kind and budget.params (the store's 6ND counts total N)."""


@dataclass(frozen=True, kw_only=True)
class VerifyConfig:
    """``configs/sl_verify.yaml``."""

    fit_json: str
    """fit.json written by sl-fit (or its folder)."""
    store: str
    """The results store the fit came from (a sweep's folder, e.g. results/quickstart, or a results root)."""
    out: str
    """Output folder: verify.json, report.txt, verify.png/.svg and the slice's sweep file."""
    target_multiple: float = 10.0
    """Target budget = this × the largest fitted budget (fit.json ``max_flops``), in the fit's FLOP accounting."""
    flops: float | None = None
    """An explicit target budget in the fit's FLOP accounting (replaces target_multiple)."""
    sizes: int = 3
    """Model sizes of the slice, spanning the approaches' predicted N_opt intervals."""
    seeds: tuple[int, ...] = (0, 1)
    """Seeds per size (model init)."""
    min_ratio: float = 2.0
    """Neighbouring sizes at least this far apart in N (before snapping to the shape family)."""
    margin: float = 1.0
    """The slice reaches this factor beyond the outermost interval ends on both sides (1: exactly the ends), so that
    an optimum just outside every approach's interval is still bracketed by the slice, not only "below" or "above"."""
    curve: str = "auto"
    """Measured profile in log N: parabola, cubic, akima, or auto (the fit's approach-2 curve when the slice has the
    sizes it needs, else a parabola)."""
    train: bool = True
    """false: print the planned points and stop (a dry run; ``--dry-run`` says the same)."""
    probe: bool = False
    """Dry run: time a few real optimizer steps per shape for the time estimate (as sl-plan does)."""
    sweep: str | None = None
    """Name of the slice's sweep (its results folder); None → ``<sweep>_verify``."""
    results_dir: str | None = None
    """Results root of the slice; None → the store's results root."""
    train_overrides: tuple[str, ...] = ()
    """sl-train overrides for the slice, applied after the recipe: where and how it runs (``launcher=local``,
    ``threads=1``, ``logger=none``, ...). Given after ``--`` on sl-verify's command line, not in the YAML: ``fit``
    and ``launcher`` name config groups, so sl-verify cannot take them as its own keys."""
    figures: bool = True
    """Write verify.png and verify.svg."""

    def __post_init__(self) -> None:
        for name in ("fit_json", "store", "out"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or value == "???":
                raise ConfigError(f"{name} is required: sl-verify fit_json=fits/X/fit.json store=results/X out=DIR")
        numbers = {"target_multiple": self.target_multiple, "min_ratio": self.min_ratio, "margin": self.margin}
        if self.flops is not None:
            numbers["flops"] = self.flops
        for name, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name}={value!r} must be a positive number")
        if self.min_ratio <= 1:
            raise ConfigError(f"min_ratio={self.min_ratio} must be above 1 (2 spaces sizes 2× apart)")
        if self.margin < 1:
            raise ConfigError(f"margin={self.margin} must be at least 1 (1: the slice spans exactly the intervals)")
        if isinstance(self.sizes, bool) or not isinstance(self.sizes, int) or self.sizes < 1:
            raise ConfigError(f"sizes={self.sizes!r} must be a whole number ≥ 1 (3 fits a parabola)")
        seeds = tuple(self.seeds) if isinstance(self.seeds, list | tuple) else (self.seeds,)
        if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
            raise ConfigError(f"seeds={list(seeds)} must be a non-empty list of non-negative integers, e.g. [0,1]")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"seeds={list(seeds)} repeats a seed: list each once")
        object.__setattr__(self, "seeds", seeds)
        if self.curve not in ("auto", *CURVES):
            raise ConfigError(f"curve={self.curve!r} is unknown: choose auto, {', '.join(CURVES)}")
        object.__setattr__(self, "train_overrides", tuple(self.train_overrides))


# --- the recipe -------------------------------------------------------------------------------------------------


def _get(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _set(config: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(config, dict) or not config:
        return {prefix: config}
    out: dict[str, Any] = {}
    for key, value in config.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    return out


def _recipe_part(config: dict[str, Any]) -> dict[str, Any]:
    """The settings a slice must share with the sweep: every hashed one but those a sweep varies and the rules."""
    dropped = set(UNHASHED) | VARYING | set(RULE_FIELDS)
    return {key: value for key, value in _flatten(config).items()
            if not any(key == d or key.startswith(f"{d}.") for d in dropped)}  # fmt: skip


def sweep_records(store: Path, fit: dict[str, Any], source: str) -> list[RunRecord]:
    """The finished records the fit was made from: of the fit's sweeps and data mix (group), under ``store``."""
    if not store.is_dir():
        raise TableError(f"store={store} is not a directory: give the results store the fit came from")
    records, skipped = scan_records(store)
    warn_skipped(skipped)
    sweeps, group = set(fit.get("sweeps") or ()), fit.get("group") or ""
    kept = [r for r in records if r.status == "finished" and (not sweeps or r.sweep in sweeps)
            and (not group or r.data_mix == group)]  # fmt: skip
    if not kept:
        which = f" of sweep {', '.join(sorted(sweeps))}" if sweeps else ""
        which += f" and data mix {group}" if group else ""
        raise TableError(f"store={store} holds no finished run records{which} (the recipe of {source}): give the "
                         "results store that sl-fit read")  # fmt: skip
    return kept


def _model(record: RunRecord) -> ModelConfig:
    return from_mapping(ModelConfig, record.config.get("model"), "model")


def _rule_value(config: dict[str, Any], dotted: str, vocab_size: int) -> float | None:
    """What the per-size rule gives for ``dotted`` in a record's config; None when that config does not plan with
    the rule (a micro-batch that does not divide the rule's batch: the record cannot have used the rule)."""
    config = json.loads(json.dumps(config))
    _set(config, dotted, None)
    if dotted == "optim.batch_tokens":
        _set(config, "optim.micro_batch_sequences", None)  # the recorded one divides the recorded batch only
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the sweep already warned about its own rounding and cooldowns
            plan = make_plan(run_config_from_dict(config), vocab_size=vocab_size)
    except ConfigError:
        return None
    return float(RULE_FIELDS[dotted](plan))


def _rules(records: list[RunRecord], vocab_size: int) -> tuple[dict[str, Any], list[str]]:
    """Per rule field: None (the per-size rule) or the sweep's one value; and a note per field."""
    values, notes = {}, []
    for dotted in RULE_FIELDS:
        recorded = [_get(r.config, dotted) for r in records]
        reproduced = [_rule_value(r.config, dotted, vocab_size) for r in records]
        by_rule = all(v is not None and r is not None and math.isclose(float(v), r, rel_tol=1e-9)
                      for v, r in zip(recorded, reproduced, strict=True))  # fmt: skip
        constant = len({json.dumps(v) for v in recorded}) == 1
        if by_rule:
            values[dotted] = None
            notes.append(f"{dotted}: per-size rule" + (" (also one value across the sweep)" if constant else ""))
        elif constant:
            values[dotted] = recorded[0]
            notes.append(f"{dotted}: {recorded[0]} (the sweep's value)")
        else:
            raise TableError(
                f"the records differ in {dotted} ({', '.join(sorted({str(v) for v in recorded})[:3])}, ...) and the "
                "per-size rule does not give those values: the store holds several recipes; fit and verify one sweep"
            )
    return values, notes


@dataclass(frozen=True, kw_only=True)
class Member:
    """One model size of the shape family."""

    model: dict[str, Any]
    """The model settings that pick it (preset, target_n, or n_layers/width/n_heads)."""
    shape: Shape
    """Its shape."""
    n_params: float
    """N in the fit's column."""
    flops_per_token: float
    """Training FLOPs per token in the fit's FLOP accounting."""


@dataclass(frozen=True, kw_only=True)
class ShapeFamily:
    """The sizes a sweep's recipe can take (module docstring)."""

    kind: str
    """``preset``, ``target`` or ``explicit``."""
    recorded: tuple[tuple[int, int, int], ...]
    """(n_layers, width, n_heads) of the sweep's shapes, by width."""
    vocab_size: int
    """Vocabulary of the recipe's tokenizer."""
    sequence_length: int
    """Context length (exact FLOPs depend on it)."""
    tied: bool
    """Whether input embedding and output head are shared."""
    ffn_size: int | None
    """The recipe's fixed SwiGLU size, or None for 8/3 · width."""
    n_column: str
    """n_params_total or n_params_nonembed: the fit's N."""
    flops_column: str
    """flops_exact, flops_6nd or 6ND: the fit's C."""

    def describe(self) -> str:
        if self.kind == "preset":
            return "presets (configs/model), nearest in N"
        if self.kind == "target":
            return "the target-N shape rule (model.target_n)"
        step = reduce(math.gcd, [w for _, w, _ in self.recorded])
        layers = sorted({layers for layers, _, _ in self.recorded})
        return (f"explicit shapes: widths in steps of {step}, depth {'/'.join(map(str, layers))} and heads of the "
                "nearest sampled width")  # fmt: skip

    def member(self, model: dict[str, Any], shape: Shape) -> Member:
        if self.ffn_size is not None:
            shape = Shape(n_layers=shape.n_layers, width=shape.width, n_heads=shape.n_heads, ffn_size=self.ffn_size)
        total = n_params_total(shape, self.vocab_size, tied=self.tied)
        n = total if self.n_column == "n_params_total" else n_params_nonembed(shape)
        if self.flops_column == "flops_exact":
            per_token = flops_per_token_exact(shape, self.vocab_size, self.sequence_length)
        else:  # the store's 6ND counts total N; a table's 6ND counts the fit's N
            per_token = flops_per_token_6n(total if self.flops_column == "flops_6nd" else n)
        return Member(model=model, shape=shape, n_params=float(n), flops_per_token=float(per_token))

    def members(self, low: float, high: float) -> list[Member]:
        """Every distinct member with N in [low, high], by N."""
        found: dict[Shape, Member] = {}
        if self.kind == "preset":
            for name, shape in PRESETS.items():
                found.setdefault(shape, self.member({"preset": name}, shape))
        elif self.kind == "target":
            # The rule is a step function of target_n: sample it finely and keep each shape once.
            for target in np.geomspace(1.0, max(high, 10.0), 4000):
                target = float(f"{target:.4g}")  # a readable model.target_n in the sweep file and run id
                shape = shape_for_target_n(target)
                found.setdefault(shape, self.member({"target_n": target}, shape))
        else:
            step = reduce(math.gcd, [w for _, w, _ in self.recorded])
            width = step
            while True:
                shape = self._explicit(width)
                if shape is not None:
                    picks = {"n_layers": shape.n_layers, "width": width, "n_heads": shape.n_heads}
                    candidate = self.member(picks, shape)
                    if candidate.n_params > high:
                        break
                    found.setdefault(shape, candidate)
                width += step
        return sorted((m for m in found.values() if low <= m.n_params <= high), key=lambda m: m.n_params)

    def _explicit(self, width: int) -> Shape | None:
        """The family's shape at a width: depth and heads of the nearest recorded width, heads reduced until they
        split the width into even halves (rotary embeddings); None when no head count does."""
        layers, _, heads = min(self.recorded, key=lambda s: (abs(math.log(width / s[1])), s[1]))
        while heads > 1 and (width % heads or (width // heads) % 2):
            heads -= 1
        if width % heads or (width // heads) % 2:
            return None
        return Shape(n_layers=layers, width=width, n_heads=heads)


def snap(members: Sequence[Member], wanted: Sequence[float]) -> list[Member]:
    """For each wanted N, the nearest member in log N not taken yet (so close sizes stay distinct), by N."""
    chosen: list[Member] = []
    for n in wanted:
        free = [m for m in members if m not in chosen]
        if not free:
            break
        chosen.append(min(free, key=lambda m: abs(math.log(m.n_params / n))))
    return sorted(chosen, key=lambda m: m.n_params)


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """The sweep's recipe: a config to train any size of its family at any budget."""

    config: dict[str, Any]
    """Hashed settings shared by the sweep (rule fields null where a rule applies; no cooldown branches)."""
    family: ShapeFamily
    """The sizes it can take."""
    notes: list[str]
    """How the recipe was read (rules, schedule, family)."""
    sweeps: tuple[str, ...]
    """The sweeps of the records."""
    n_records: int
    """Records read."""
    n_range: tuple[float, float]
    """Smallest and largest N (the fit's column) of the records."""
    cache_dir: str | None
    """The records' token cache folder (unhashed; where the slice finds the same tokens)."""
    results_dir: Path
    """The records' results root."""


def _family_kind(models: list[ModelConfig]) -> str:
    kinds = {"preset" if m.preset is not None else "target" if m.target_n is not None else "explicit" for m in models}
    if len(kinds) > 1:
        raise TableError(f"the records mix model shapes given as {', '.join(sorted(kinds))}: verify one sweep at once")
    return kinds.pop()


def _results_root(store: Path, record: RunRecord) -> Path:
    for root in (store, store.parent, store.parent.parent):
        if record_path(root, record.sweep, record.run_id).is_file():
            return root
    return store.parent


def recipe_of(records: list[RunRecord], store: Path, n_column: str, flops_column: str) -> Recipe:
    """The one recipe behind ``records``; TableError naming the first setting in which they differ."""
    parts = [_recipe_part(r.config) for r in records]
    for record, part in zip(records[1:], parts[1:], strict=True):
        if part != parts[0]:
            key = next(k for k in sorted(set(part) | set(parts[0])) if part.get(k) != parts[0].get(k))
            raise TableError(
                f"store={store}: run {record.sweep}/{record.run_id} differs from {records[0].run_id} in {key} "
                f"({part.get(key)!r} against {parts[0].get(key)!r}): the store holds several recipes; fit and verify "
                "one sweep at a time (store=results/<sweep>)"
            )
    models = [_model(r) for r in records]
    first, shape = records[0], models[0].shape()
    vocab = (first.n_params_total - first.n_params_nonembed) // ((1 if first.tied_embeddings else 2) * shape.width)
    values, notes = _rules(records, vocab)
    config = json.loads(json.dumps({k: v for k, v in first.config.items() if k not in UNHASHED}))
    for dotted, value in values.items():
        _set(config, dotted, value)
    schedule = config["schedule"]
    if schedule.get("kind") == "wsd":
        notes.append("schedule.kind: wsd, plain runs to the target (one cooldown at its end, no branched cooldowns)")
    else:
        notes.append(f"schedule.kind: {schedule.get('kind')} over the whole target budget")
    schedule["cooldown_budgets"] = []
    for name in SHAPE_FIELDS:
        config["model"][name] = None
    shapes = sorted({(s.n_layers, s.width, s.n_heads) for s in (m.shape() for m in models)}, key=lambda s: s[1])
    ffn = models[0].ffn_size
    family = ShapeFamily(kind=_family_kind(models), recorded=tuple(shapes), vocab_size=int(vocab),
                         sequence_length=int(config["data"]["sequence_length"]), tied=bool(first.tied_embeddings),
                         ffn_size=ffn, n_column=n_column, flops_column=flops_column)  # fmt: skip
    notes.append(f"sizes: {family.describe()}")
    notes.append("seeds: model init only (the data order is data.seed, as in the sweep)")
    sizes = [float(getattr(r, n_column)) for r in records]
    cache = _get(first.config, "paths.cache_dir")
    return Recipe(config=config, family=family, notes=notes, sweeps=tuple(sorted({r.sweep for r in records})),
                  n_records=len(records), n_range=(min(sizes), max(sizes)), cache_dir=cache,
                  results_dir=_results_root(store, first))  # fmt: skip


# --- the slice as a sweep file ----------------------------------------------------------------------------------


def budget_of(flops_column: str, n_column: str, target: float) -> dict[str, Any]:
    """The slice's budget: the target in the fit's FLOP accounting."""
    if flops_column in BUDGET_KINDS:
        kind, params = BUDGET_KINDS[flops_column]
    else:  # 6·N·D with the fit's N
        kind, params = "flops_6nd", "total" if n_column == "n_params_total" else "nonembed"
    return {"kind": kind, "value": float(target), "params": params}


def train_overrides(config_dir: Path, name: str, extra: Sequence[str]) -> list[str]:
    """The ``sl-train -m`` overrides that launch the sweep file ``config_dir/experiment/<name>.yaml``."""
    return [f"hydra.searchpath=['file://{config_dir.resolve()}']", f"experiment={name}", *extra]


def launch(overrides: Sequence[str]) -> None:
    """``sl-train -m`` in a child process (output shown as it comes); finished points are skipped there."""
    command = [sys.executable, "-m", "scaling_lab.cli.train", "-m", *overrides]
    done = subprocess.run(command, check=False)
    if done.returncode == EXIT_USER_ERROR:  # a pre-start check refused the slice: its one error line is above
        raise ReportedError(f"sl-train -m refused the slice ({' '.join(overrides)})")
    if done.returncode not in (0, EXIT_POINTS_FAILED):  # failed points: the runs that finished are compared
        raise ConfigError(f"sl-train -m exited with status {done.returncode} (its output is above): fix the cause "
                          "and rerun sl-verify; finished points are kept")  # fmt: skip


def collect(
    table: pd.DataFrame, *, results_dir: Path, sweep: str, n_column: str, flops_column: str
) -> tuple[pd.DataFrame, list[str]]:
    """The slice's measured points (n_params, loss, seed, flops, run_id) from the planned runs' records, and the
    planned runs without a finished record (with their status)."""
    rows, missing = [], []
    for run_id, seed in zip(table["run_id"], table["seed"], strict=True):
        path = record_path(results_dir, sweep, run_id)
        record = read_record(path) if path.is_file() else None
        if record is None or record.status != "finished":
            missing.append(f"{run_id} ({record.status if record else 'no record'})")
            continue
        point = record.points[-1]
        n = float(getattr(record, n_column))
        by_column = {"flops_exact": point.flops_exact, "flops_6nd": point.flops_6nd}
        flops = by_column.get(flops_column, flops_6nd(n, point.n_tokens))
        rows.append({"run_id": run_id, "seed": int(seed), "n_params": n, "loss": point.loss, "flops": flops,
                     "n_tokens": point.n_tokens})  # fmt: skip
    return pd.DataFrame(rows, columns=["run_id", "seed", "n_params", "loss", "flops", "n_tokens"]), missing
