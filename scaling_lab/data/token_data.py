"""TokenData: the deterministic training stream and the fixed eval set of a data mix.

Each source's ids (one memmap) are split once, independently of the seed and of the mix weights:

    [ train region ............................ | held-out region: n_eval windows ]

Windows are sequence_length + 1 ids at stride sequence_length, so within a region every id after
the first is predicted exactly once per epoch and the two regions share no id.

Training sequence i: the mixing schedule (mixture.py) gives its source s and its index k within s;
epoch e = k // W_s and position k mod W_s of a permutation of the W_s train windows drawn from
(seed, s, e). So sequence i depends only on (data config, seed, i), for any i.

Eval set: n_eval = ceil(eval_tokens / sequence_length) windows, split over sources by their weights
(largest remainder), each source's share spread evenly over its held-out region.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from scaling_lab.budget import MAX_EPOCHS
from scaling_lab.data.config import DataConfig
from scaling_lab.data.mixture import MixSchedule
from scaling_lab.errors import DataError


@dataclass(frozen=True, kw_only=True)
class SourceSplit:
    """One source's ids and where its train and held-out regions lie."""

    name: str
    """Source name."""
    weight: float
    """Normalized weight in the mix."""
    tokens: np.ndarray
    """All of the source's ids (read-only memmap)."""
    train_windows: int
    """Number of training windows (the train region is ids [0, train_windows·L + 1))."""
    eval_start: int
    """First id of the held-out region."""
    eval_windows: int
    """Windows in the held-out region."""
    fingerprint: str
    """Content hash of the source."""
    text_bytes: int
    """UTF-8 bytes of text in the source."""


def split_source(
    *,
    name: str,
    weight: float,
    tokens: np.ndarray,
    sequence_length: int,
    eval_windows: int,
    fingerprint: str,
    text_bytes: int,
) -> SourceSplit:
    """Cut the held-out region (eval_windows windows) from the end of a source; the rest is for training."""
    held_out = eval_windows * sequence_length + 1
    available = len(tokens)
    if available < 2 * held_out:
        raise DataError(
            f"data.sources[{name}] has {available} tokens, too few to hold out {held_out} for the eval set and train "
            f"on at least as many: lower data.eval_tokens (now {eval_windows * sequence_length}) or add text"
        )
    eval_start = available - held_out
    train_windows = (eval_start - 1) // sequence_length
    return SourceSplit(
        name=name,
        weight=weight,
        tokens=tokens,
        train_windows=train_windows,
        eval_start=eval_start,
        eval_windows=eval_windows,
        fingerprint=fingerprint,
        text_bytes=text_bytes,
    )


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to `weights` summing to `total` (Hamilton's largest-remainder method)."""
    exact = np.asarray(weights, dtype=np.float64) * total
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - int(counts.sum())]] += 1
    return counts


def mix_hash(config: DataConfig, tokenizer_identity: str, fingerprints: list[str]) -> str:
    """Hash of the mix definition: sources (content), weights, tokenizer, sequence length, eval size; not the seed."""
    definition = {
        "sources": [
            {"name": source.name, "fingerprint": fingerprint, "weight": round(weight, 12)}
            for source, fingerprint, weight in zip(config.sources, fingerprints, config.weights, strict=True)
        ],
        "tokenizer": tokenizer_identity,
        "sequence_length": config.sequence_length,
        "eval_tokens": config.eval_tokens,
    }
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


class TokenData:
    """The training stream and eval set of one data config (build it with `prepare_data`)."""

    def __init__(
        self, *, config: DataConfig, splits: list[SourceSplit], vocab_size: int, tokenizer_name: str, mix_hash: str
    ) -> None:
        self.config = config
        self.splits = splits
        self.vocab_size = vocab_size
        """Number of token ids (the model's vocabulary)."""
        self.sequence_length = config.sequence_length
        """Tokens predicted per sequence; sequences hold sequence_length + 1 ids."""
        self.mix_name = config.name
        """The data mix's name."""
        self.mix_hash = mix_hash
        """Hash of the mix definition (sources' content, weights, tokenizer, sequence_length, eval size)."""
        self.tokenizer_name = tokenizer_name
        """The tokenizer's name, e.g. 'byte'."""
        self.schedule = MixSchedule([split.weight for split in splits], config.seed)
        self._window = np.arange(config.sequence_length + 1, dtype=np.int64)
        self._permutation = lru_cache(maxsize=8)(self._epoch_permutation)

    def _epoch_permutation(self, source: int, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.config.seed, source, epoch])
        return rng.permutation(self.splits[source].train_windows)

    def _gather(self, tokens: np.ndarray, starts: np.ndarray) -> np.ndarray:
        return np.asarray(tokens[starts[:, None] + self._window], dtype=np.int64)

    def train_sequences(self, start: int, count: int) -> np.ndarray:
        """Sequences [start, start+count) of the deterministic training stream, shape (count, L + 1), int64.

        Sequence i depends only on (data config, seed, i), never on model or batch size, so step `step` at
        batch size B takes [step·B, (step+1)·B) and gets the same stream at any B and on resume. Any i ≥ 0
        works: a source that runs out starts a new epoch with a fresh permutation of its windows.
        """
        if start < 0 or count < 0:
            raise ValueError(f"train_sequences needs start >= 0 and count >= 0, got {start}, {count}")
        source, local = self.schedule.assign(np.arange(start, start + count, dtype=np.int64))
        out = np.empty((count, self.sequence_length + 1), dtype=np.int64)
        for s in np.unique(source):
            rows = np.flatnonzero(source == s)
            split = self.splits[int(s)]
            epoch, position = np.divmod(local[rows], split.train_windows)
            windows = np.empty_like(position)
            for e in np.unique(epoch):
                chosen = epoch == e
                windows[chosen] = self._permutation(int(s), int(e))[position[chosen]]
            out[rows] = self._gather(split.tokens, windows * self.sequence_length)
        return out

    def eval_windows_per_source(self) -> np.ndarray:
        """How many eval sequences each source contributes (by weight, largest remainder)."""
        total = self.splits[0].eval_windows
        return largest_remainder(np.array([split.weight for split in self.splits]), total)

    def eval_sequences(self) -> np.ndarray:
        """The fixed held-out eval set, shape (n, L + 1), int64; identical for every run of the mix, any seed."""
        blocks = []
        for split, count in zip(self.splits, self.eval_windows_per_source(), strict=True):
            if count == 0:
                continue
            chosen = (np.arange(count, dtype=np.int64) * split.eval_windows) // count  # spread over the region
            blocks.append(self._gather(split.tokens, split.eval_start + chosen * self.sequence_length))
        return np.concatenate(blocks)

    def epochs(self, n_tokens: int) -> dict[str, float]:
        """Epochs of each source's training split that training on `n_tokens` predicted tokens implies.

        Warns (UserWarning) when any source repeats more than 4 times (Muennighoff et al. 2023).
        """
        n_sequences = math.ceil(n_tokens / self.sequence_length)
        counts = self.schedule.counts(n_sequences)
        result = {
            split.name: float(count) / split.train_windows for split, count in zip(self.splits, counts, strict=True)
        }
        over = {name: round(value, 2) for name, value in result.items() if value > MAX_EPOCHS}
        if over:
            warnings.warn(
                f"{n_tokens:.3g} tokens of data mix {self.mix_name!r} repeat {over} epochs, above "
                f"{MAX_EPOCHS:g}: repeated data bends the scaling law (Muennighoff et al. 2023); "
                "add text or lower the token budget",
                UserWarning,
                stacklevel=2,
            )
        return result

    def describe(self) -> dict:
        """Plain facts for a run record: mix name and hash, tokenizer, vocabulary and per-source sizes."""
        return {
            "mix_name": self.mix_name,
            "mix_hash": self.mix_hash,
            "tokenizer": self.tokenizer_name,
            "vocab_size": self.vocab_size,
            "sequence_length": self.sequence_length,
            "seed": self.config.seed,
            "eval_tokens": int(self.eval_windows_per_source().sum()) * self.sequence_length,
            "sources": {
                split.name: {
                    "weight": split.weight,
                    "fingerprint": split.fingerprint,
                    "text_bytes": split.text_bytes,
                    "tokens": len(split.tokens),
                    "train_tokens": split.train_windows * self.sequence_length,
                }
                for split in self.splits
            },
        }
