"""One estimate type for every fitted or planned number: a value and, when bootstrapped, its percentile interval.

Percentile intervals (Efron & Tibshirani 1993, §13.3) over the bootstrap samples; ``level`` is the interval's
central probability as it was computed (``bootstrap.level``), never a name that assumes 95 %. fit.json keeps its
schema-1 shape: values beside a ``ci95`` object of [low, high] pairs (the key predates configurable levels; the
level itself is recorded as ``bootstrap.level`` and approach 3's ``ci_level``). The helpers here write and read
that shape so that every result does it the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaling_lab.fitting.bootstrap import percentile_interval


@dataclass(frozen=True)
class Estimate:
    """A fitted or planned quantity with its bootstrap interval."""

    value: float
    """Point estimate (from the fit to all the data, or from the law)."""
    low: float = math.nan
    """Lower end of the central ``level`` percentile interval; NaN when there is none or no sample was finite."""
    high: float = math.nan
    """Upper end of the interval; NaN likewise."""
    level: float | None = None
    """Central probability of the interval; None when no interval was computed (no bootstrap)."""

    @classmethod
    def from_samples(cls, value: float, samples: Iterable[float], level: float) -> Estimate:
        """The value with the central ``level`` percentile interval of the finite samples."""
        low, high = percentile_interval(np.asarray(list(samples), dtype=float), level)
        return cls(float(value), low, high, level)

    @property
    def interval(self) -> tuple[float, float] | None:
        """(low, high) when both ends are finite, else None."""
        if self.level is None or not (math.isfinite(self.low) and math.isfinite(self.high)):
            return None
        return (self.low, self.high)

    def format(self, spec: str = ".4g") -> str:
        """``value [low, high]``, or the value alone without a finite interval."""
        return f"{self.value:{spec}}{self.interval_text(spec, sep=' ')}"

    def interval_text(self, spec: str = ".6g", *, sep: str = "  ") -> str:
        """``sep[low, high]``, or "" without a finite interval (the reports' style)."""
        interval = self.interval
        return "" if interval is None else f"{sep}[{interval[0]:{spec}}, {interval[1]:{spec}}]"

    def bounds(self) -> list[float]:
        """[low, high] as fit.json writes it (NaN becomes null when written)."""
        return [self.low, self.high]


def estimates_from_samples(
    point: Mapping[str, float], samples: Sequence[Mapping[str, float]] | None, names: Iterable[str], level: float | None
) -> dict[str, Estimate]:
    """Each named quantity of ``point`` as an estimate, with its interval over ``samples`` when there are samples
    (``level`` required then); without samples, no interval."""
    if not samples:
        return {name: Estimate(float(point[name])) for name in names}
    assert level is not None
    return {name: Estimate.from_samples(point[name], (s[name] for s in samples), level) for name in names}


def intervals_of(estimates: Mapping[str, Estimate]) -> dict[str, list[float]] | None:
    """fit.json's ``ci95`` object of these estimates ({name: [low, high]}); None when none has an interval."""
    if not any(e.level is not None for e in estimates.values()):
        return None
    return {name: e.bounds() for name, e in estimates.items() if e.level is not None}


def estimates_of(
    values: Mapping[str, Any], names: Iterable[str], intervals: Mapping[str, Any] | None, level: float | None
) -> dict[str, Estimate]:
    """The estimates written by :func:`intervals_of`: each name's value from ``values`` and its [low, high] from
    ``intervals`` (a fit.json ``ci95`` object; null bounds read as NaN) at ``level``."""
    out = {}
    for name in names:
        bounds = (intervals or {}).get(name)
        if bounds is None:
            out[name] = Estimate(_float(values[name]))
        else:
            out[name] = Estimate(_float(values[name]), _float(bounds[0]), _float(bounds[1]), level)
    return out


def _float(value: Any) -> float:
    """A fit.json number; null (how NaN is written) reads as NaN."""
    return math.nan if value is None else float(value)
