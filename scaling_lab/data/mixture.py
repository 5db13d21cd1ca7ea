"""A deterministic, random-access mixing schedule: which source training sequence i comes from.

Sources are split into a balanced binary tree. At a node whose left part has share p of the
node's weight, the node's j-th sequence goes left iff floor((j+1)p + θ) − floor(jp + θ) = 1
(a Beatty / Sturmian sequence, θ drawn from the seed). Then among the node's first j sequences
exactly floor(jp + θ) went left, so each sequence's index *within its source* is known in closed
form: the schedule is O(depth) per sequence, vectorized, needs no state, and any window of n
consecutive sequences holds n·p ± 1 left ones at every node — proportions within depth/n of the
weights (Kuipers & Niederreiter 1974, ch. 1 on the discrepancy of such sequences), where iid
sampling would give ±1/√n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, kw_only=True)
class _Node:
    lo: int
    hi: int
    share: float  # weight of sources [lo, mid) over weight of [lo, hi)
    phase: float  # θ in [0, 1)

    @property
    def mid(self) -> int:
        return (self.lo + self.hi) // 2

    def lefts_before(self, j: np.ndarray) -> np.ndarray:
        """How many of the node's first j sequences went left: floor(j·p + θ)."""
        return np.floor(j * self.share + self.phase).astype(np.int64)


class MixSchedule:
    """Assigns training sequence i to (source, index within that source), deterministically given the seed."""

    def __init__(self, weights: list[float], seed: int) -> None:
        if not weights or min(weights) <= 0:
            raise ValueError("weights must be positive")
        self.weights = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
        cumulative = np.concatenate([[0.0], np.cumsum(self.weights)])
        self._nodes: dict[tuple[int, int], _Node] = {}

        def build(lo: int, hi: int) -> None:
            if hi - lo < 2:
                return
            mid = (lo + hi) // 2
            share = (cumulative[mid] - cumulative[lo]) / (cumulative[hi] - cumulative[lo])
            phase = float(np.random.default_rng([seed, lo, hi]).random())
            self._nodes[(lo, hi)] = _Node(lo=lo, hi=hi, share=float(share), phase=phase)
            build(lo, mid)
            build(mid, hi)

        build(0, len(weights))

    def assign(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(source, index within source) for each global sequence index; both int64 arrays like `indices`."""
        indices = np.asarray(indices, dtype=np.int64)
        source = np.zeros_like(indices)
        local = indices.copy()

        def descend(lo: int, hi: int, mask: np.ndarray) -> None:
            if hi - lo < 2:
                source[mask] = lo
                return
            node = self._nodes[(lo, hi)]
            j = local[mask]
            before = node.lefts_before(j)
            goes_left = node.lefts_before(j + 1) > before
            local[mask] = np.where(goes_left, before, j - before)
            left = mask.copy()
            left[mask] = goes_left
            right = mask.copy()
            right[mask] = ~goes_left
            descend(lo, node.mid, left)
            descend(node.mid, hi, right)

        descend(0, len(self.weights), np.ones(indices.shape, dtype=bool))
        return source, local

    def counts(self, n_sequences: int) -> np.ndarray:
        """How many of the first `n_sequences` sequences each source gets (exact, O(sources))."""
        result = np.zeros(len(self.weights), dtype=np.int64)

        def descend(lo: int, hi: int, n: int) -> None:
            if hi - lo < 2:
                result[lo] = n
                return
            node = self._nodes[(lo, hi)]
            left = int(node.lefts_before(np.array([n]))[0])
            descend(lo, node.mid, left)
            descend(node.mid, hi, n - left)

        descend(0, len(self.weights), int(n_sequences))
        return result
