"""Typed configs from plain mappings (what ``OmegaConf.to_container`` returns), with one-line errors."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from scaling_lab.errors import ConfigError

T = TypeVar("T")


def from_mapping(cls: type[T], values: Any, where: str, *, lists_as_tuples: bool = False) -> T:
    """``cls(**values)``; a non-mapping or an unknown key is a ConfigError naming the dotted field under ``where``
    (empty for the top level).

    ``lists_as_tuples`` suits frozen configs whose sequence fields are tuples (hashable, immutable)."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where or 'the config'} must be a mapping, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        field = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"{field} is not a setting: choose among {', '.join(sorted(known))}")
    values = dict(values)
    if lists_as_tuples:
        values = {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
    return cls(**values)
