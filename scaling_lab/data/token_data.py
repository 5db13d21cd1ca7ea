"""TokenData: the deterministic training stream of a data mix and the fixed eval suite it is scored on.

The eval suite does not depend on the mix: each of its sets (by default each domain of the embedded corpus) holds
out the last ``eval_bytes`` of its text, rounded up to whole windows of the run's tokenizer. A training source with
the same text (same fingerprint) is split there, independently of the seed and of the mix weights:

    [ train region ............................ | held-out region of the eval set ]

and a training source that is in no eval set trains on all of its ids. Windows are sequence_length + 1 ids at stride
sequence_length, so within a region every id after the first is predicted exactly once per epoch and the two regions
share no id. Two runs with different mixes and the same tokenizer are scored on identical ids; with different
tokenizers, on the same text up to less than one window per set, and bits per byte compare them.

Training sequence i: the mixing schedule (mixture.py) gives its source s and its index k within s;
epoch e = k // W_s and position k mod W_s of a permutation of the W_s train windows drawn from
(seed, s, e). So sequence i depends only on (data config, seed, i), for any i.

Bits per byte: an eval set's summed loss in nats over ln 2 times the UTF-8 bytes of exactly the ids it predicts
(``EvalSet.window_bytes``; the separator between documents counts no byte).
"""

from __future__ import annotations

import dataclasses
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
    fingerprint: str
    """Content hash of the source."""
    text_bytes: int
    """UTF-8 bytes of text in the source."""


@dataclass(frozen=True, kw_only=True)
class EvalSet:
    """One held-out set of the eval suite, tokenized by the run's tokenizer."""

    name: str
    """The set's name (a column suffix in tables: loss_<name>, bpb_<name>)."""
    sequences: np.ndarray
    """The held-out windows, shape (n, L + 1), int64."""
    window_bytes: np.ndarray
    """UTF-8 bytes of the L ids each window predicts, shape (n,)."""
    start: int
    """First id of the held-out region in the source's ids."""
    fingerprint: str
    """Content hash of the set's source."""

    @property
    def predicted_tokens(self) -> int:
        """Ids the set's windows predict."""
        return self.sequences.shape[0] * (self.sequences.shape[1] - 1)

    def strided(self, tokens: int | None) -> EvalSet:
        """About ``tokens`` predicted ids of the set, windows taken at an even stride over the whole held-out region
        (the set itself for None or more): the loss-curve points score this subset, the final points all of it."""
        length = self.sequences.shape[1] - 1
        count = len(self.sequences) if tokens is None else max(1, tokens // length)
        if count >= len(self.sequences):
            return self
        chosen = np.arange(len(self.sequences))[:: len(self.sequences) // count][:count]
        return dataclasses.replace(self, sequences=self.sequences[chosen], window_bytes=self.window_bytes[chosen])


def held_out_region(tokens: np.ndarray, token_bytes: np.ndarray, *, eval_bytes: int, sequence_length: int,
                    name: str) -> tuple[int, int]:  # fmt: skip
    """(first id, windows) of the shortest run of whole windows at the end of ``tokens`` that predicts at least
    ``eval_bytes`` bytes of text; the text before it must be at least as long (it is what the source trains on)."""
    available, tail = len(tokens), min(len(tokens), 2 * eval_bytes + sequence_length)
    while True:  # read only the end of the memmap: bytes per id are >= 1 except at separators
        predicted = np.cumsum(token_bytes[np.asarray(tokens[available - tail + 1 :], dtype=np.int64)][::-1])
        if (predicted.size and predicted[-1] >= eval_bytes) or tail == available:
            break
        tail = min(available, 2 * tail)
    enough = predicted.size > 0 and predicted[-1] >= eval_bytes
    windows = math.ceil((int(np.searchsorted(predicted, eval_bytes)) + 1) / sequence_length) if enough else 0
    start = available - 1 - windows * sequence_length
    if not enough or start < windows * sequence_length + 1:
        raise DataError(
            f"data.eval_sets[{name}] has {available} tokens, too few to hold out {eval_bytes} bytes of text for the"
            " eval suite and keep at least as much before them: lower data.eval_bytes or add text"
        )
    return start, windows


def make_eval_set(*, name: str, tokens: np.ndarray, token_bytes: np.ndarray, eval_bytes: int, sequence_length: int,
                  fingerprint: str) -> EvalSet:  # fmt: skip
    """The held-out windows of one eval set and the bytes each predicts."""
    start, windows = held_out_region(tokens, token_bytes, eval_bytes=eval_bytes, sequence_length=sequence_length,
                                     name=name)  # fmt: skip
    starts = start + np.arange(windows, dtype=np.int64) * sequence_length
    sequences = np.asarray(tokens[starts[:, None] + np.arange(sequence_length + 1)], dtype=np.int64)
    return EvalSet(name=name, sequences=sequences, window_bytes=token_bytes[sequences[:, 1:]].sum(axis=1),
                   start=start, fingerprint=fingerprint)  # fmt: skip


def split_source(*, name: str, weight: float, tokens: np.ndarray, sequence_length: int, held_out_start: int | None,
                 fingerprint: str, text_bytes: int) -> SourceSplit:  # fmt: skip
    """A training source: its windows before ``held_out_start`` (the region an eval set holds out of the same text),
    or all of them when no eval set reads this text."""
    end = len(tokens) if held_out_start is None else held_out_start
    if end <= sequence_length:
        raise DataError(f"data.sources[{name}] has {end} tokens to train on, not one sequence of {sequence_length}:"
                        " add text or shorten data.sequence_length")  # fmt: skip
    return SourceSplit(name=name, weight=weight, tokens=tokens, train_windows=(end - 1) // sequence_length,
                       fingerprint=fingerprint, text_bytes=text_bytes)  # fmt: skip


def suite_hash(eval_sets: list[EvalSet] | list[tuple[str, str]], eval_bytes: int) -> str:
    """Hash of the eval suite's text: each set's name and source content and the bytes held out. It does not depend
    on the tokenizer (bits per byte compare runs across tokenizers) nor on the training mix."""
    named = [(s.name, s.fingerprint) if isinstance(s, EvalSet) else tuple(s) for s in eval_sets]
    definition = {"sets": [list(pair) for pair in named], "eval_bytes": eval_bytes}
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


def mix_hash(config: DataConfig, tokenizer_identity: str, fingerprints: list[str], eval_suite_hash: str) -> str:
    """Hash of the mix definition: sources (content), weights, tokenizer, sequence length, eval suite; not the seed."""
    definition = {
        "sources": [
            {"name": source.name, "fingerprint": fingerprint, "weight": round(weight, 12)}
            for source, fingerprint, weight in zip(config.sources, fingerprints, config.weights, strict=True)
        ],
        "tokenizer": tokenizer_identity,
        "sequence_length": config.sequence_length,
        "eval_suite": eval_suite_hash,
    }
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


class TokenData:
    """The training stream and eval set of one data config (build it with `prepare_data`)."""

    def __init__(self, *, config: DataConfig, splits: list[SourceSplit], eval_suite: list[EvalSet], vocab_size: int,
                 tokenizer_name: str, mix_hash: str) -> None:  # fmt: skip
        self.config = config
        self.splits = splits
        self.eval_suite = eval_suite
        """The held-out sets every run is scored on, whatever its mix (the data config's eval_sets)."""
        self.eval_suite_hash = suite_hash(eval_suite, config.eval_bytes)
        """Hash of the eval suite's text (:func:`suite_hash`); rows with different hashes are never pooled."""
        self.vocab_size = vocab_size
        """Number of token ids (the model's vocabulary)."""
        self.sequence_length = config.sequence_length
        """Tokens predicted per sequence; sequences hold sequence_length + 1 ids."""
        self.mix_name = config.name
        """The data mix's name."""
        self.mix_hash = mix_hash
        """Hash of the mix definition (sources' content, weights, tokenizer, sequence_length, eval suite)."""
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
            "eval_suite_hash": self.eval_suite_hash,
            "eval_sets": {
                held.name: {"windows": len(held.sequences), "bytes": int(held.window_bytes.sum())}
                for held in self.eval_suite
            },
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
