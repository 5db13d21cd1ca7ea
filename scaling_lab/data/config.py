"""Typed configs of the data layer: sources, tokenizer, and the data mix a run trains on.

Keyword-only dataclasses usable as Hydra structured configs (required fields are ``MISSING``);
every check lives in ``__post_init__`` and raises :class:`ConfigError` naming the dotted field.
``configs/data/*.yaml`` are instances of :class:`DataConfig`; :func:`data_config_from_dict` builds
one from a plain mapping (what ``OmegaConf.to_container(cfg.data)`` returns in ``scaling_lab/cli``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from scaling_lab.errors import ConfigError
from scaling_lab.typed import MISSING, check_seed, from_mapping

SOURCE_KINDS = ("embedded", "files", "hub")
FILE_FORMATS = ("auto", "text", "json", "parquet")
TOKENIZER_KINDS = ("byte", "bpe", "hf")
TOKEN_DTYPES = {"uint8": 2**8, "uint16": 2**16, "uint32": 2**32}
BYTE_VOCAB_SIZE = 256  # one token per UTF-8 byte value
MIN_BPE_VOCAB_SIZE = BYTE_VOCAB_SIZE + 1  # the 256 byte-level symbols (ByteLevel alphabet) + <|endoftext|>
# Largest BPE vocabulary we train: 2^20 ids, four times the largest published ones (262 144 in Gemma 3, Gemma Team
# 2025; 256 000 in PaLM, Chowdhery et al. 2022). The `tokenizers` trainer sizes its tables by the request, about 70
# bytes per id whatever the corpus: a request of 1e9 asked for 71 GB and aborted the whole process, not an exception.
MAX_BPE_VOCAB_SIZE = 2**20

# Default eval suite: 2**18 bytes of held-out text per eval set, 2**19 for the two embedded domains together (as many
# predicted tokens for the byte tokenizer as the single eval set had before). The mean eval loss is a mean over
# sequences, the sampling unit (tokens inside a sequence are correlated), so SE/mean = CV/sqrt(n_sequences) with CV the
# coefficient of variation of per-sequence mean losses. scripts/bench_data.py measures CV on the embedded mix for the
# tiny byte-level Llama: 0.19 after 300 steps, 0.24 after 1000. With 2048 sequences of 128 bytes per domain, SE stays
# below 0.55 % of a domain's loss (CV 0.24) and below 0.4 % for the union.
DEFAULT_EVAL_BYTES = 2**18


def _required(value: Any, dotted: str, hint: str) -> None:
    if value is None or (isinstance(value, str) and value == MISSING):
        raise ConfigError(f"{dotted} is required: {hint}")


def _optional_positive_int(value: Any, dotted: str) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
        raise ConfigError(f"{dotted}={value!r} must be a positive integer or null")


@dataclass(kw_only=True)
class TokenizerConfig:
    """Which tokenizer turns text into ids."""

    kind: str = "byte"
    """'byte' (vocabulary 256, no files: the default for tiny CPU models), 'bpe' (byte-level BPE trained
    on this config's sources with `tokenizers`, cached and hashed) or 'hf' (a pretrained Hugging Face
    tokenizer by name; needs the network or a local copy)."""
    vocab_size: Optional[int] = None  # noqa: UP045 (OmegaConf 2.3 reads typing.Optional)
    """BPE only (required there): the vocabulary size to train, special tokens included."""
    name: Optional[str] = None  # noqa: UP045
    """hf only (required there): a hub id such as 'gpt2', or a local directory."""
    revision: Optional[str] = None  # noqa: UP045
    """hf only: the hub revision (commit, tag or branch) to pin."""
    dtype: str = "auto"
    """Token cache dtype: 'auto' (smallest of uint8/uint16/uint32 that holds the vocabulary) or one of them."""

    def __post_init__(self) -> None:
        if self.kind not in TOKENIZER_KINDS:
            raise ConfigError(
                f"data.tokenizer.kind={self.kind!r} is unknown: choose one of {', '.join(TOKENIZER_KINDS)}"
            )
        if self.dtype != "auto" and self.dtype not in TOKEN_DTYPES:
            raise ConfigError(f"data.tokenizer.dtype={self.dtype!r} is unknown: choose auto, {', '.join(TOKEN_DTYPES)}")
        _optional_positive_int(self.vocab_size, "data.tokenizer.vocab_size")
        if self.kind == "byte" and self.vocab_size not in (None, BYTE_VOCAB_SIZE):
            raise ConfigError(
                f"data.tokenizer.vocab_size={self.vocab_size} does not apply to kind=byte (always "
                f"{BYTE_VOCAB_SIZE}): remove it or use kind=bpe"
            )
        if self.kind == "bpe":
            _required(self.vocab_size, "data.tokenizer.vocab_size", "set the BPE vocabulary size, e.g. 4096")
            if self.vocab_size < MIN_BPE_VOCAB_SIZE:
                raise ConfigError(
                    f"data.tokenizer.vocab_size={self.vocab_size} is below the {MIN_BPE_VOCAB_SIZE} byte-level "
                    f"symbols a BPE needs: choose at least {MIN_BPE_VOCAB_SIZE}"
                )
            if self.vocab_size > MAX_BPE_VOCAB_SIZE:
                raise ConfigError(
                    f"data.tokenizer.vocab_size={self.vocab_size} is above the {MAX_BPE_VOCAB_SIZE} ids a BPE is"
                    " trained to here: choose a smaller vocabulary (4096 to 65536 is usual for small models)"
                )
        if self.kind == "hf":
            _required(self.name, "data.tokenizer.name", "name a hub tokenizer such as 'gpt2' or a local folder")
        if self.vocab_size is not None and self.dtype != "auto" and self.vocab_size > TOKEN_DTYPES[self.dtype]:
            raise ConfigError(
                f"data.tokenizer.vocab_size={self.vocab_size} does not fit data.tokenizer.dtype={self.dtype} "
                f"(at most {TOKEN_DTYPES[self.dtype]} ids): use dtype=auto or {token_dtype_for(self.vocab_size)}"
            )


def token_dtype_for(vocab_size: int, requested: str = "auto") -> str:
    """The cache dtype for a vocabulary: the smallest unsigned type that holds every id, or `requested`."""
    if requested != "auto":
        if vocab_size > TOKEN_DTYPES[requested]:
            raise ConfigError(
                f"data.tokenizer.dtype={requested} holds {TOKEN_DTYPES[requested]} ids but the vocabulary has "
                f"{vocab_size}: use dtype=auto"
            )
        return requested
    for name, capacity in TOKEN_DTYPES.items():
        if vocab_size <= capacity:
            return name
    raise ConfigError(f"vocabulary of {vocab_size} ids exceeds uint32: choose a smaller tokenizer")


@dataclass(kw_only=True)
class SourceConfig:
    """One source of text and its weight in the mix."""

    name: str = MISSING
    """Label of the source in records, epochs() and errors (unique within a mix)."""
    kind: str = MISSING
    """'embedded' (the built-in corpus, one domain), 'files' (local txt/jsonl/parquet) or 'hub' (a HF dataset)."""
    weight: float = 1.0
    """Share of training sequences drawn from this source; weights are normalized over the mix."""
    domain: Optional[str] = None  # noqa: UP045
    """embedded only: 'prose' or 'code' (see data/corpus/SOURCES.md)."""
    paths: list[str] = field(default_factory=list)
    """files only: files, folders (read recursively) or globs ('**' allowed); relative to the working directory."""
    format: str = "auto"
    """files only: 'auto' (by extension: .jsonl/.json -> json, .parquet -> parquet, else text), 'text', 'json'
    or 'parquet'. A text file is one document."""
    text_field: str = "text"
    """json, parquet and hub: the column holding the text."""
    dataset: Optional[str] = None  # noqa: UP045
    """hub only: the dataset id, e.g. 'roneneldan/TinyStories'."""
    subset: Optional[str] = None  # noqa: UP045
    """hub only: the dataset configuration name, if it has several."""
    split: str = "train"
    """hub only: the split to read (the held-out eval slice is cut from it)."""
    revision: Optional[str] = None  # noqa: UP045
    """hub only: the dataset revision (commit sha or tag) to pin."""
    streaming: bool = False
    """hub only: stream instead of downloading the whole split (then max_documents is required)."""
    max_documents: Optional[int] = None  # noqa: UP045
    """Read at most this many documents (the first ones in the source's order)."""

    def __post_init__(self) -> None:
        _required(self.name, "data.sources[].name", "give every source a short unique name")
        where = f"data.sources[{self.name}]"
        if self.kind not in SOURCE_KINDS:
            raise ConfigError(f"{where}.kind={self.kind!r} is unknown: choose one of {', '.join(SOURCE_KINDS)}")
        if not isinstance(self.weight, int | float) or not self.weight > 0:
            raise ConfigError(f"{where}.weight={self.weight!r} must be > 0: give it a positive weight or remove it")
        _optional_positive_int(self.max_documents, f"{where}.max_documents")
        if self.kind == "embedded":
            from scaling_lab.data.corpus import DOMAINS

            if self.domain not in DOMAINS:
                raise ConfigError(f"{where}.domain={self.domain!r} is unknown: choose one of {', '.join(DOMAINS)}")
        if self.kind == "files":
            if not self.paths:
                raise ConfigError(f"{where}.paths is empty: list files, folders or globs")
            if self.format not in FILE_FORMATS:
                raise ConfigError(f"{where}.format={self.format!r} is unknown: choose one of {', '.join(FILE_FORMATS)}")
        if self.kind == "hub":
            _required(self.dataset, f"{where}.dataset", "name a hub dataset such as 'roneneldan/TinyStories'")
            if self.streaming and self.max_documents is None:
                raise ConfigError(f"{where}.max_documents is required with streaming=true: cap the documents to read")


@dataclass(kw_only=True)
class DataConfig:
    """A named data mix: its sources and weights, the tokenizer, the sequence length and the eval set."""

    name: str = MISSING
    """Mix name; goes into every run record next to the mix hash."""
    sources: list[SourceConfig] = MISSING
    """One or more sources; each training sequence comes whole from one of them, in proportion to the weights."""
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    """The tokenizer (byte-level by default)."""
    sequence_length: int = MISSING
    """Tokens per training sequence (the model's context). Each sequence holds sequence_length + 1 ids."""
    eval_sets: Optional[list[SourceConfig]] = None  # noqa: UP045
    """The eval suite: the held-out sets every run is scored on, whatever its training mix. None (the default) means
    the embedded corpus's domains, each a set (:func:`eval_sets_of`). Each set holds out the last ``eval_bytes`` of
    its text; a training source with the same text trains only before that region. The loss that is fitted by
    default is the union's; records keep each set's loss and bits per byte too."""
    eval_bytes: int = DEFAULT_EVAL_BYTES
    """UTF-8 bytes of held-out text per eval set (rounded up to whole sequences of the run's tokenizer)."""
    seed: int = 0
    """Seeds the mixing schedule and the order of windows in each epoch; the eval set does not depend on it."""

    def __post_init__(self) -> None:
        _required(self.name, "data.name", "name the data mix, e.g. name: embedded")
        if isinstance(self.sources, str) or not self.sources:
            raise ConfigError("data.sources is empty: list at least one source (see configs/data/embedded.yaml)")
        names = [source.name for source in self.sources]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"data.sources names {duplicates} repeat: give every source a unique name")
        _required(self.sequence_length, "data.sequence_length", "set it to the model's context length")
        for dotted, value in (("data.sequence_length", self.sequence_length), ("data.eval_bytes", self.eval_bytes)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{dotted}={value!r} must be a positive integer")
        check_seed(self.seed, "data.seed")
        if self.eval_sets is not None:
            if isinstance(self.eval_sets, str) or not self.eval_sets:
                raise ConfigError("data.eval_sets is empty: list at least one held-out set, or null for the default")
            names = [source.name for source in self.eval_sets]
            if "all" in names or len(set(names)) < len(names):
                raise ConfigError(
                    f"data.eval_sets names {names}: give every set a unique name other than 'all' (the union's name)"
                )

    @property
    def weights(self) -> list[float]:
        """Source weights normalized to sum to one, in source order."""
        total = float(sum(source.weight for source in self.sources))
        return [source.weight / total for source in self.sources]


UNION = "all"
"""The name of the union of an eval suite's sets in records, tables and fits."""


def eval_sets_of(config: DataConfig) -> list[SourceConfig]:
    """The eval suite's sets: ``config.eval_sets``, or by default each domain of the embedded corpus."""
    if config.eval_sets is not None:
        return list(config.eval_sets)
    from scaling_lab.data.corpus import DOMAINS

    return [SourceConfig(name=domain, kind="embedded", domain=domain) for domain in DOMAINS]


def data_config_from_dict(mapping: Mapping[str, Any]) -> DataConfig:
    """Build a :class:`DataConfig` from a plain mapping (e.g. ``OmegaConf.to_container(cfg.data, resolve=True)``)."""
    values = dict(mapping)
    for key in ("sources", "eval_sets"):
        if isinstance(values.get(key), list | tuple):
            values[key] = [
                source if isinstance(source, SourceConfig) else from_mapping(SourceConfig, source, f"data.{key}[{i}]")
                for i, source in enumerate(values[key])
            ]
    if "tokenizer" in values and not isinstance(values["tokenizer"], TokenizerConfig):
        values["tokenizer"] = from_mapping(TokenizerConfig, values["tokenizer"] or {}, "data.tokenizer")
    return from_mapping(DataConfig, values, "data")
