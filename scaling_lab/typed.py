"""Typed configs from plain mappings (what ``OmegaConf.to_container`` returns), with one-line errors."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from scaling_lab.errors import ConfigError

T = TypeVar("T")

# Every integer a config holds ends up in a C long, a torch or numpy int64 or a Parquet int64 column (seeds, token
# counts, sizes); a larger one overflows far from the field that caused it.
MAX_CONFIG_INT = 2**63 - 1


def check_seed(value: Any, field: str) -> None:
    """A seed is an integer in [0, 2^63 - 1]: torch generators take 64-bit seeds, numpy non-negative ones, and the
    results table stores them as int64."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_CONFIG_INT:
        raise ConfigError(f"{field}={value!r} must be an integer from 0 to 2^63 - 1 (e.g. {field}=0)")


def check_numbers(values: Mapping[str, Any], where: str) -> None:
    """Every number in a config section is finite and every integer fits int64, in lists too; ConfigError names the
    dotted field. NaN passes comparisons such as ``value < 0`` silently and inf overflows integer conversions later
    (steps, sequence counts), so neither is accepted anywhere; free-form mappings (``grid``) are not looked into."""
    for key, value in values.items():
        dotted = f"{where}.{key}" if where else str(key)
        for item in value if isinstance(value, list | tuple) else (value,):
            if isinstance(item, float) and not math.isfinite(item):
                raise ConfigError(f"{dotted}={value} is not a finite number: give a finite value")
            if isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_CONFIG_INT:
                raise ConfigError(f"{dotted}={value} does not fit a 64-bit integer: give a smaller number")


_KINDS = {bool: "true or false", int: "a whole number", float: "a number"}


def _fits(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _number_kind(annotation: Any) -> type | None:
    """``float`` or ``int`` for a field annotated with one of them (optional or not), else None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        annotation = inner[0] if len(inner) == 1 else None
    return annotation if annotation in (int, float) else None


def yaml_number(value: Any, annotation: Any) -> Any:
    """A number written as text, for a number field, as that number: YAML 1.1 (Hydra's) reads ``5.9e21`` (no
    exponent sign) and ``1e3`` as strings. Anything else is returned as it is, for ``type_problem`` to judge."""
    kind = _number_kind(annotation)
    if kind is None or not isinstance(value, str):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return number if kind is float else (int(number) if number.is_integer() else value)


def type_problem(value: Any, annotation: Any) -> str | None:
    """What ``value`` should be for a field annotated ``annotation``, or None when it fits.

    Checks numbers and booleans, optional ones and tuples of them; any other annotation (text, mappings, nested
    configs) is left to the config's own checks."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [arg for arg in args if arg is not type(None)]
        return type_problem(value, inner[0]) if len(inner) == 1 else None
    if annotation in _KINDS:
        return None if _fits(value, annotation) else _KINDS[annotation]
    if origin is tuple and args:
        kinds = [args[0]] * (len(value) if isinstance(value, tuple | list) else 0) if args[-1] is Ellipsis else args
        if not all(kind in _KINDS for kind in kinds):
            return None
        wanted = f"a list of {len(args)} " if args[-1] is not Ellipsis else "a list of "
        wanted += "numbers" if float in kinds else ("whole numbers" if int in kinds else "true/false values")
        ok = isinstance(value, tuple | list) and len(value) == len(kinds)
        return None if ok and all(_fits(v, k) for v, k in zip(value, kinds, strict=True)) else wanted
    return None


def from_mapping(
    cls: type[T], values: Any, where: str, *, lists_as_tuples: bool = False, check_types: bool = False
) -> T:
    """``cls(**values)``; a non-mapping or an unknown key is a ConfigError naming the dotted field under ``where``
    (empty for the top level).

    ``lists_as_tuples`` suits frozen configs whose sequence fields are tuples (hashable, immutable).
    ``check_types``: a value that does not fit its field's annotation (``type_problem``) is a ConfigError naming the
    field, before the config's own checks compare it with numbers."""
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
    if check_types:
        hints = typing.get_type_hints(cls)
        values = {key: yaml_number(value, hints[key]) for key, value in values.items()}
        for key, value in values.items():
            wanted = type_problem(value, hints[key])
            if wanted:
                field = f"{where}.{key}" if where else key
                shown = list(value) if isinstance(value, tuple) else value
                raise ConfigError(f"{field}={shown!r} must be {wanted}")
    check_numbers(values, where)  # after yaml_number: the text 'nan' is a float by then
    return cls(**values)
