"""The data layer: sources -> tokenizer -> token cache -> mixing schedule -> TokenData.

data = prepare_data(config, cache_dir)
batch = data.train_sequences(step * batch_size, batch_size)   # (B, L + 1) int64
suite = data.eval_suite                                      # fixed held-out sets, the same for every mix
data.epochs(n_tokens)                                        # epochs per source, warns above 4
"""

from __future__ import annotations

import hashlib
import pathlib
from collections.abc import Iterator

from scaling_lab.data.cache import CachedTokens, cached_tokens
from scaling_lab.data.config import (
    UNION,
    DataConfig,
    SourceConfig,
    TokenizerConfig,
    data_config_from_dict,
    eval_sets_of,
)
from scaling_lab.data.files import default_cache_dir
from scaling_lab.data.sources import LoadedSource, load_source
from scaling_lab.data.token_data import EvalSet, TokenData, make_eval_set, mix_hash, split_source, suite_hash
from scaling_lab.data.tokenizer import BPE_SAMPLE_BYTES, make_tokenizer, planned_vocab_size

__all__ = [
    "UNION",
    "DataConfig",
    "EvalSet",
    "SourceConfig",
    "TokenData",
    "TokenizerConfig",
    "data_config_from_dict",
    "default_cache_dir",
    "eval_sets_of",
    "planned_vocab_size",
    "prepare_data",
]


def bpe_training_sample(loaded: list[LoadedSource], sample_bytes: int = BPE_SAMPLE_BYTES) -> Iterator[str]:
    """The text a BPE learns from: each source's first documents, in order, until it has given its even share of
    `sample_bytes` (the document crossing the share included whole). The sample depends on the sources alone (not on
    the mix weights), so the tokenizer, keyed by the sources, is the same for every mix of them."""
    share = sample_bytes // len(loaded)
    for source in loaded:
        taken = 0
        for text in (text for batch in source.documents() for text in batch):
            yield text
            taken += len(text.encode("utf-8"))
            if taken >= share:
                break


def prepare_data(config: DataConfig, cache_dir: pathlib.Path) -> TokenData:
    """Load every source and eval set, tokenize them into the shared cache (or reuse it), and return the mix's
    TokenData: the training stream and the eval suite. The tokenizer (a BPE) learns from the training sources only."""
    cache_dir = pathlib.Path(cache_dir)
    loaded = [load_source(source, cache_dir) for source in config.sources]
    held = [load_source(source, cache_dir) for source in eval_sets_of(config)]
    fingerprints = [source.fingerprint for source in loaded]
    tokenizer = make_tokenizer(
        config.tokenizer,
        training_texts=lambda: bpe_training_sample(loaded),
        corpus_key=hashlib.sha256("|".join(fingerprints).encode()).hexdigest(),
        cache_dir=cache_dir,
    )
    cached: dict[str, CachedTokens] = {}  # by fingerprint: opening a cache checksums its whole file

    def tokens_of(source: LoadedSource) -> CachedTokens:
        if source.fingerprint not in cached:
            cached[source.fingerprint] = cached_tokens(source, tokenizer, cache_dir)
        return cached[source.fingerprint]

    suite = [
        make_eval_set(name=source.config.name, tokens=tokens_of(source).tokens,
                      token_bytes=tokenizer.token_bytes, eval_bytes=config.eval_bytes,
                      sequence_length=config.sequence_length, fingerprint=source.fingerprint)
        for source in held
    ]  # fmt: skip
    held_out_start = {eval_set.fingerprint: eval_set.start for eval_set in suite}
    splits = []
    for source, weight in zip(loaded, config.weights, strict=True):
        built = tokens_of(source)
        splits.append(
            split_source(
                name=source.config.name,
                weight=weight,
                tokens=built.tokens,
                sequence_length=config.sequence_length,
                held_out_start=held_out_start.get(source.fingerprint),
                fingerprint=source.fingerprint,
                text_bytes=built.text_bytes,
            )
        )
    return TokenData(
        config=config,
        splits=splits,
        eval_suite=suite,
        vocab_size=tokenizer.vocab_size,
        tokenizer_name=tokenizer.name,
        mix_hash=mix_hash(config, tokenizer.identity, fingerprints, suite_hash(suite, config.eval_bytes)),
    )
