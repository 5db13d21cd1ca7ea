"""The data layer: sources -> tokenizer -> token cache -> mixing schedule -> TokenData.

data = prepare_data(config, cache_dir)
batch = data.train_sequences(step * batch_size, batch_size)   # (B, L + 1) int64
eval_set = data.eval_sequences()                             # fixed held-out set
data.epochs(n_tokens)                                        # epochs per source, warns above 4
"""

from __future__ import annotations

import hashlib
import math
import pathlib
from collections.abc import Iterator

from scaling_lab.data.cache import cached_tokens
from scaling_lab.data.config import DataConfig, SourceConfig, TokenizerConfig, data_config_from_dict
from scaling_lab.data.files import default_cache_dir
from scaling_lab.data.sources import LoadedSource, load_source
from scaling_lab.data.token_data import TokenData, mix_hash, split_source
from scaling_lab.data.tokenizer import make_tokenizer, planned_vocab_size

__all__ = [
    "DataConfig",
    "SourceConfig",
    "TokenData",
    "TokenizerConfig",
    "data_config_from_dict",
    "default_cache_dir",
    "planned_vocab_size",
    "prepare_data",
]


def _all_texts(loaded: list[LoadedSource]) -> Iterator[str]:
    for source in loaded:
        for batch in source.documents():
            yield from batch


def prepare_data(config: DataConfig, cache_dir: pathlib.Path) -> TokenData:
    """Load every source, tokenize it into the shared cache (or reuse it), and return the mix's TokenData."""
    cache_dir = pathlib.Path(cache_dir)
    loaded = [load_source(source, cache_dir) for source in config.sources]
    fingerprints = [source.fingerprint for source in loaded]
    tokenizer = make_tokenizer(
        config.tokenizer,
        training_texts=lambda: _all_texts(loaded),
        corpus_key=hashlib.sha256("|".join(fingerprints).encode()).hexdigest(),
        cache_dir=cache_dir,
    )
    eval_windows = math.ceil(config.eval_tokens / config.sequence_length)
    splits = []
    for source, weight in zip(loaded, config.weights, strict=True):
        cached = cached_tokens(source, tokenizer, cache_dir)
        splits.append(
            split_source(
                name=source.config.name,
                weight=weight,
                tokens=cached.tokens,
                sequence_length=config.sequence_length,
                eval_windows=eval_windows,
                fingerprint=source.fingerprint,
                text_bytes=cached.text_bytes,
            )
        )
    return TokenData(
        config=config,
        splits=splits,
        vocab_size=tokenizer.vocab_size,
        tokenizer_name=tokenizer.name,
        mix_hash=mix_hash(config, tokenizer.identity, fingerprints),
    )
