"""The unified scaling law for routed language models (Clark et al. 2022), fitted over dense and MoE runs.

At a fixed number of training tokens, the loss of a model with N active parameters routed over E experts is

    log L(N, E) = a·log N + b·log Ê + c·log N·log Ê + d,
    1/Ê = 1/(E − 1 + (1/E_start − 1/E_max)⁻¹) + 1/E_max,

where Ê is Clark et al.'s saturating transform of the expert count: Ê = E_start for a dense model (E = 1), Ê ≈ E
for moderate E and Ê → E_max for very many experts. With E_start = 1 and E_max = ∞ (the defaults: our sweeps stay at
E ≤ 16, far below the hundreds where Clark et al. see saturation) Ê = E. The transform is held fixed, so the law is
linear in (a, b, c, d) and the fit is exact and fast: a Huber regression on log-loss residuals (δ = 1e-3, Hoffmann et
al. 2022 App. D.2) started from ordinary least squares.

The **effective-parameter multiplier** of an MoE is the factor by which a dense model (E = 1) must grow to reach the
MoE's loss at equal active N (Clark et al.'s effective parameter count N̄): from a·log N̄ + d = log L(N, E),

    N̄ / N = exp((b + c·log N)·log Ê / a)    (with E_start = 1),

which exceeds 1 when experts help (b/a > 0) and shrinks with N when c > 0 (Clark et al. find routing's benefit
falls with size). N is the active count, with or without the vocabulary matrices (``n_params``); Clark et al. train
every model on the same tokens, so the fit takes one D (``n_tokens``) of a store trained at several.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from scaling_lab.atomic import write_text_atomically
from scaling_lab.budget import ROUNDING_WARN_FRACTION
from scaling_lab.errors import ConfigError, TableError
from scaling_lab.fitting import bootstrap
from scaling_lab.fitting.bootstrap import BootstrapConfig
from scaling_lab.fitting.seeds import assign_budgets

N_COLUMNS = {"active": "n_params_active", "active_nonembed": "n_params_active_nonembed"}
"""Which active N the law counts: with the vocabulary matrices (the default, as for dense fits, Pearce & Song 2024)
or without (Kaplan et al. 2020)."""
D_RTOL = 2 * ROUNDING_WARN_FRACTION
"""Realized token budgets within 2 % of each other are one D: whole steps of each size's own batch move its realized D
by up to 1 % from the budget asked for (budget.py warns past that), so two sizes of one budget differ by up to 2 %."""

HUBER_DELTA = 1e-3
"""Huber δ on log-loss residuals (Hoffmann et al. 2022, App. D.2)."""
PARAMETERS = ("a", "b", "c", "d")
MIN_POINTS = 5
"""Four coefficients and at least one degree of freedom left to measure the misfit."""


@dataclass(frozen=True, kw_only=True)
class MoELawConfig:
    """How to fit the law."""

    n_params: str = "active"
    """``active`` (n_params_active) or ``active_nonembed`` (n_params_active_nonembed)."""
    n_tokens: float | None = None
    """The D the law is fitted at (rows with this n_tokens); None → the largest D every expert count was trained to."""
    e_start: float = 1.0
    """Clark et al.'s E_start (Ê of a dense model); 1 makes Ê = E for E ≪ E_max."""
    e_max: float = math.inf
    """Clark et al.'s E_max (where Ê saturates); ∞ turns saturation off."""

    def __post_init__(self) -> None:
        if self.n_params not in N_COLUMNS:
            raise ConfigError(f"moe_law.n_params={self.n_params!r} is unknown: choose {' or '.join(N_COLUMNS)}")
        if not 0 < self.e_start < self.e_max:
            raise ConfigError(f"moe_law.e_start={self.e_start} must lie in (0, e_max={self.e_max}) (1 is usual)")


def saturated_experts(n_experts: Any, e_start: float = 1.0, e_max: float = math.inf) -> np.ndarray:
    """Ê: Clark et al. 2022's saturating transform of the expert count (Ê(1) = E_start, Ê → E_max)."""
    experts = np.asarray(n_experts, dtype=float)
    offset = 1.0 / (1.0 / e_start - 1.0 / e_max)
    return 1.0 / (1.0 / (experts - 1.0 + offset) + 1.0 / e_max)


def _design(n_params: np.ndarray, n_experts: np.ndarray, e_start: float, e_max: float) -> np.ndarray:
    log_n, log_e = np.log(n_params), np.log(saturated_experts(n_experts, e_start, e_max))
    return np.column_stack([log_n, log_e, log_n * log_e, np.ones_like(log_n)])


@dataclass(frozen=True, kw_only=True)
class MoELawFit:
    """A fitted unified law, its intervals and the multipliers it implies."""

    a: float
    """Exponent of N (negative: loss falls with size)."""
    b: float
    """Exponent of Ê (negative: loss falls with experts)."""
    c: float
    """Interaction: how the experts' exponent changes with log N."""
    d: float
    """log L of a one-parameter dense model (the intercept)."""
    e_start: float
    """Ê of a dense model (held fixed)."""
    e_max: float
    """Saturation of Ê (held fixed; inf for none)."""
    n_params_column: str
    """The store column used as N."""
    n_tokens: float
    """D the law holds at."""
    n_points: int
    """(N, E) points fitted (seeds averaged)."""
    rmse_log_loss: float
    """Root-mean-square residual of log L."""
    objective: str = f"huber(delta={HUBER_DELTA:g}) on log loss"
    """What the fit minimised."""
    reference_n: float = 0.0
    """Active N at which :attr:`multipliers` are reported (the geometric mean of the fitted sizes)."""
    multipliers: dict[str, float] = field(default_factory=dict)
    """Effective-parameter multiplier N̄/N at reference_n, by expert count."""
    intervals: dict[str, list[float]] = field(default_factory=dict)
    """Bootstrap percentile intervals of a, b, c, d and of each ``multiplier_E<E>``."""
    n_resamples: int = 0
    """Bootstrap resamples behind the intervals (0: none)."""

    def log_loss(self, n_params: Any, n_experts: Any) -> np.ndarray:
        """log L at active N and E."""
        log_n = np.log(np.asarray(n_params, float))
        log_e = np.log(saturated_experts(n_experts, self.e_start, self.e_max))
        return self.a * log_n + self.b * log_e + self.c * log_n * log_e + self.d

    def loss(self, n_params: Any, n_experts: Any) -> np.ndarray:
        """Predicted loss at active N and E."""
        return np.exp(self.log_loss(n_params, n_experts))

    def multiplier(self, n_params: Any, n_experts: Any) -> np.ndarray:
        """N̄/N: the dense size reaching the MoE's loss, over the MoE's active size (1 for a dense model)."""
        dense_log_loss = self.log_loss(n_params, np.ones_like(np.asarray(n_experts, float)))
        return np.exp((self.log_loss(n_params, n_experts) - dense_log_loss) / self.a)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["e_max"] = None if math.isinf(self.e_max) else self.e_max  # JSON has no infinity
        return {"kind": "moe_unified_law", **values}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "moe law") -> MoELawFit:
        values = dict(data)
        if values.pop("kind", None) != "moe_unified_law":
            raise TableError(f"{source}: not an MoE law (kind moe_unified_law): write it with scripts/moe_fit.py")
        values["e_max"] = math.inf if values.get("e_max") is None else values["e_max"]
        try:
            return cls(**values)
        except TypeError as error:
            raise TableError(f"{source}: {error}: rewrite it with scripts/moe_fit.py") from None

    def report(self) -> str:
        """The fit as text: coefficients with intervals, misfit, and the multiplier of each expert count."""

        def interval(name: str) -> str:
            low_high = self.intervals.get(name)
            return f"  [{low_high[0]:.4g}, {low_high[1]:.4g}]" if low_high else ""

        lines = [
            "MoE unified law (Clark et al. 2022): log L = a log N + b log Ê + c log N log Ê + d",
            f"  N = {self.n_params_column}, D = {self.n_tokens:.4g} tokens, Ê with E_start={self.e_start:g},"
            f" E_max={self.e_max:g}; {self.n_points} points, {self.objective}, rmse(log L) {self.rmse_log_loss:.4g}",
        ]
        lines += [f"  {name} = {getattr(self, name):.4g}{interval(name)}" for name in PARAMETERS]
        if self.n_resamples:
            lines.append(f"  ({self.n_resamples} bootstrap resamples, percentile intervals)")
        lines.append(f"effective-parameter multiplier N̄/N at equal active N = {self.reference_n:.3g}:")
        lines += [
            f"  E={experts}: {value:.3g}x{interval(f'multiplier_E{experts}')}"
            for experts, value in self.multipliers.items()
        ]
        return "\n".join(lines)


def _shared_budgets(table: pd.DataFrame) -> set[float]:
    """The budgets D (each the smallest realized D of its :data:`D_RTOL` cluster, ``assign_budgets``) that every
    expert count reached."""
    realized = table["n_tokens"].to_numpy(dtype=float)
    clusters = pd.Series(realized).groupby(assign_budgets(realized, D_RTOL)).transform("min")
    return set.intersection(*clusters.groupby(table["n_experts"].to_numpy()).apply(set))


def moe_points(table: pd.DataFrame, config: MoELawConfig, source: str) -> pd.DataFrame:
    """The fit table (n_params, n_experts, loss: seed mean) at one D, from a results-store table
    (:func:`scaling_lab.results.store.load_table`)."""
    column = N_COLUMNS[config.n_params]
    missing = [name for name in (column, "n_experts", "n_tokens", "loss") if name not in table.columns]
    if missing:
        raise TableError(f"{source}: no column {missing[0]}: the MoE law reads a results store (schema 4 or later)")
    if table.empty:
        raise TableError(f"{source}: no finished runs to fit")
    if config.n_tokens is None:
        shared = _shared_budgets(table)
        if not shared:
            raise TableError(f"{source}: no D shared by every expert count: choose one with moe_law.n_tokens=<D>")
        n_tokens = max(shared)
    else:
        n_tokens = config.n_tokens
    rows = table[np.isclose(table["n_tokens"].to_numpy(float), n_tokens, rtol=D_RTOL)]
    if rows.empty:
        found = ", ".join(f"{d:g}" for d in sorted(set(table["n_tokens"])))
        raise ConfigError(f"moe_law.n_tokens={n_tokens:g} is not in {source}: choose one of {found}")
    points = rows.groupby([column, "n_experts"], as_index=False)["loss"].mean()
    points = points.rename(columns={column: "n_params"})
    points.attrs.update(n_params_column=column, n_tokens=float(n_tokens))
    return points


def _coefficients(points: pd.DataFrame, e_start: float, e_max: float) -> np.ndarray:
    design = _design(points["n_params"].to_numpy(float), points["n_experts"].to_numpy(float), e_start, e_max)
    target = np.log(points["loss"].to_numpy(float))
    start = np.linalg.lstsq(design, target, rcond=None)[0]
    robust = least_squares(lambda theta: design @ theta - target, start, loss="huber", f_scale=HUBER_DELTA,
                           xtol=1e-15, ftol=1e-15, gtol=1e-15)  # fmt: skip
    return robust.x


def _check_design(points: pd.DataFrame, source: str) -> None:
    sizes, experts = points["n_params"].nunique(), points["n_experts"].nunique()
    if len(points) < MIN_POINTS or sizes < 2 or experts < 2:
        raise TableError(f"{source}: the MoE law needs ≥ {MIN_POINTS} (N, E) points over ≥ 2 sizes and ≥ 2 expert"
                         f" counts (dense included); found {len(points)} points, {sizes} sizes, {experts} counts:"
                         " train more of the sweep")  # fmt: skip


def _sample(points: pd.DataFrame, e_start: float, e_max: float, reference_n: float, experts: list[int]) -> dict:
    """One bootstrap resample's coefficients and multipliers (module level: pickled to the workers)."""
    if points["n_params"].nunique() < 2 or points["n_experts"].nunique() < 2:
        return None
    a, b, c, d = _coefficients(points, e_start, e_max)
    law = MoELawFit(a=a, b=b, c=c, d=d, e_start=e_start, e_max=e_max, n_params_column="", n_tokens=0.0,
                    n_points=len(points), rmse_log_loss=0.0)  # fmt: skip
    values = dict(zip(PARAMETERS, (a, b, c, d), strict=True))
    for count in experts:
        values[f"multiplier_E{count}"] = float(law.multiplier(reference_n, count))
    return values


def fit_moe_law(points: pd.DataFrame, config: MoELawConfig = MoELawConfig(), *, boot: BootstrapConfig | None = None,
                source: str = "table") -> MoELawFit:  # fmt: skip
    """Fit the unified law to :func:`moe_points`' table (columns n_params, n_experts, loss), with bootstrap
    intervals over points drawn with replacement when ``boot`` asks for resamples."""
    _check_design(points, source)
    a, b, c, d = _coefficients(points, config.e_start, config.e_max)
    experts = sorted(int(e) for e in set(points["n_experts"]))
    reference_n = float(np.exp(np.log(points["n_params"].to_numpy(float)).mean()))
    law = MoELawFit(a=a, b=b, c=c, d=d, e_start=config.e_start, e_max=config.e_max,
                    n_params_column=points.attrs.get("n_params_column", "n_params"),
                    n_tokens=float(points.attrs.get("n_tokens", float("nan"))), n_points=len(points),
                    rmse_log_loss=0.0, reference_n=reference_n)  # fmt: skip
    residuals = law.log_loss(points["n_params"], points["n_experts"]) - np.log(points["loss"].to_numpy(float))
    multipliers = {str(count): float(law.multiplier(reference_n, count)) for count in experts}
    intervals: dict[str, list[float]] = {}
    resamples = 0
    if boot is not None and boot.n_resamples > 0:
        samples = bootstrap.run(_sample, points.reset_index(drop=True), boot,
                                dict(e_start=config.e_start, e_max=config.e_max, reference_n=reference_n,
                                     experts=experts))  # fmt: skip
        good = [sample for sample in samples if sample is not None]
        resamples = len(good)
        if good:
            names = [*PARAMETERS, *(f"multiplier_E{count}" for count in experts)]
            intervals = {
                name: list(bootstrap.percentile_interval(np.array([sample[name] for sample in good]), boot.level))
                for name in names
            }
    return MoELawFit(**{**asdict(law), "rmse_log_loss": float(np.sqrt(np.mean(residuals**2))),
                        "multipliers": multipliers, "intervals": intervals, "n_resamples": resamples})  # fmt: skip


def fit_store(table: pd.DataFrame, config: MoELawConfig = MoELawConfig(), *, boot: BootstrapConfig | None = None,
              source: str = "results store") -> list[MoELawFit]:  # fmt: skip
    """One law per D that every expert count of a store table was trained to (``config.n_tokens`` alone when set),
    in increasing D: how the multiplier moves with the training budget."""
    if config.n_tokens is None and {"n_experts", "n_tokens"} <= set(table.columns) and not table.empty:
        shared = _shared_budgets(table)
        if shared:
            return [fit_moe_law(moe_points(table, replace(config, n_tokens=float(d)), source), config, boot=boot,
                                source=f"{source} at D={d:g}") for d in sorted(shared)]  # fmt: skip
    return [fit_moe_law(moe_points(table, config, source), config, boot=boot, source=source)]  # one D, or the error


def write_moe_laws(laws: list[MoELawFit], path: str | Path) -> None:
    """``moe_law.json``: the laws (one per D) as a JSON list, written atomically."""
    write_text_atomically(Path(path), json.dumps([law.to_dict() for law in laws], indent=2, allow_nan=True) + "\n")


def read_moe_law(path: str | Path, n_tokens: float | None = None) -> MoELawFit:
    """The law at ``n_tokens`` (None: the largest D) from a file :func:`write_moe_laws` wrote (``moe_law.json``)."""
    location = Path(path)
    try:
        data = json.loads(location.read_text())
    except (OSError, ValueError) as error:
        raise TableError(f"moe law file {location}: cannot read it ({error}): give a moe_law.json path") from None
    if not isinstance(data, list) or not data or not all(isinstance(item, dict) for item in data):
        raise TableError(f"moe law file {location}: not a list of laws: write it with scripts/moe_fit.py")
    laws = [MoELawFit.from_dict(item, source=f"moe law file {location}") for item in data]
    if n_tokens is None:
        return max(laws, key=lambda law: law.n_tokens)
    for law in laws:
        if math.isclose(law.n_tokens, n_tokens, rel_tol=1e-6):
            return law
    found = ", ".join(f"{law.n_tokens:g}" for law in laws)
    raise ConfigError(f"moe.n_tokens={n_tokens:g} has no law in {location}: choose one of {found}")
