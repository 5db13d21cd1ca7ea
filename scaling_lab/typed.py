"""Typed dataclasses from plain data, with one-line errors: the one coercion engine of the package.

Configs (what ``OmegaConf.to_container`` returns) and stored run records (what ``json.load`` returns) go through the
same routine, :func:`from_mapping`: unknown and missing keys, values of the wrong type, nested dataclasses and lists
of them, optional fields, integers given for floats, numpy scalars. Only the words differ (:class:`Wording`): a config
names the setting to change on the command line (``optim.lr=...``, a :class:`~scaling_lab.errors.ConfigError`), a
record names the field of its JSON file (``field points[0].loss=...``, a :class:`~scaling_lab.errors.TableError`).
:func:`defaults_of` gives a dataclass's defaults as plain data, so that Hydra's configs take them from the dataclass.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import numpy as np

from scaling_lab.errors import ConfigError, ScalingLabError, TableError

T = TypeVar("T")

# Every integer a config holds ends up in a C long, a torch or numpy int64 or a Parquet int64 column (seeds, token
# counts, sizes); a larger one overflows far from the field that caused it.
MAX_CONFIG_INT = 2**63 - 1

MISSING: Any = "???"
"""The value of a required field that is not set yet (``omegaconf.MISSING``, spelled here so that the library never
imports omegaconf): the default of a required field of a Hydra structured config."""


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


# ----------------------------------------------------------------------------------------------------------------
# How faults are worded


@dataclasses.dataclass(frozen=True, kw_only=True)
class Wording:
    """How one kind of input names its faults; the engine's checks are the same for every kind."""

    error: type[ScalingLabError]
    """The exception raised."""
    field: str
    """Put before a field's name: "" for a config's setting, "field " for a record's JSON field."""
    whole: str
    """The name of the whole input, when the fault is at its top level."""
    mapping: str
    """What a mapping is called."""
    kinds: Mapping[Any, str]
    """The scalar annotations whose values are checked, and what a wrong value must be instead."""
    unknown: str
    """Format of an unknown key: ``{field}`` (dotted) and ``{known}`` (the valid names)."""
    missing: str
    """Format of a required key that is absent: ``{field}``."""
    say_got: bool
    """End a wrong value's line with the type it has (", got str")."""
    text_numbers: bool
    """Read a number written as text in a number field (YAML 1.1, Hydra's, reads ``5.9e21`` as a string)."""
    relative: bool
    """A nested dataclass's own checks name its fields relative to it (records): prefix them with its path."""

    def fault(self, message: str) -> ScalingLabError:
        return self.error(message)

    def wrong(self, field: str, value: Any, wanted: str) -> ScalingLabError:
        got = f", got {type(value).__name__}" if self.say_got else ""
        shown = list(value) if isinstance(value, tuple) else value
        return self.error(f"{self.field}{field}={shown!r} must be {wanted}{got}")


RENAMED_SETTINGS: dict[str, str] = {
    "data.eval_tokens": "data.eval_bytes (UTF-8 bytes of held-out text per eval set of data.eval_sets)",
}
"""Settings that were renamed, by their old dotted name: a config or override that still names one is told the new
name (here and in Hydra's own "Could not override" error, cli/hydra_errors.py)."""


CONFIG = Wording(
    error=ConfigError,
    field="",
    whole="the config",
    mapping="a mapping",
    kinds={bool: "true or false", int: "a whole number", float: "a number"},
    unknown="{field} is not a setting: choose among {known}",
    missing="{field} is required: set it (e.g. {field}=...)",
    say_got=False,
    text_numbers=True,
    relative=False,
)
"""Configs: a ConfigError naming the setting as it is written on the command line; text is left to the config's
own checks."""

RECORD = Wording(
    error=TableError,
    field="field ",
    whole="record",
    mapping="an object",
    kinds={bool: "bool", int: "int", float: "float", str: "str"},
    unknown="unknown field {field}: remove it (or upgrade scaling_lab)",
    missing="missing field {field}: the record is incomplete; rewrite it",
    say_got=True,
    text_numbers=False,
    relative=True,
)
"""Stored records: a TableError naming the JSON field; every scalar is checked, text too."""


# ----------------------------------------------------------------------------------------------------------------
# The engine


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotations of a dataclass's fields."""
    return typing.get_type_hints(cls)


def _dotted(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _required(field: dataclasses.Field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def from_mapping(cls: type[T], values: Any, where: str, *, check_types: bool = False, wording: Wording = CONFIG) -> T:
    """``cls(**values)`` from plain data, every fault one ``wording.error`` naming the dotted field under ``where``
    (empty for the top level): a non-mapping, an unknown key, a missing key of a field without a default, and values of
    the wrong type. (A config field whose default is :data:`MISSING` is checked by the config itself.)

    Values take the shape of their annotations: nested dataclasses and lists of them are built from mappings, lists
    become tuples in tuple fields. ``check_types`` also checks every scalar against its annotation
    (:data:`Wording.kinds`; integers become floats in float fields, numpy scalars plain numbers) before the config's
    own checks compare it with numbers; configs then check that every number is finite and fits int64."""
    if values is None and wording is CONFIG:
        values = {}
    if not isinstance(values, Mapping):
        raise wording.fault(f"{wording.field}{where or wording.whole} must be {wording.mapping}, got "
                            f"{type(values).__name__}")  # fmt: skip
    fields = {field.name: field for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields), key=str)
    if unknown:
        field = _dotted(where, str(unknown[0]))
        if field in RENAMED_SETTINGS:
            raise wording.fault(f"{field} was renamed: use {RENAMED_SETTINGS[field]}")
        raise wording.fault(wording.unknown.format(field=field, known=", ".join(sorted(fields))))
    missing = [name for name, field in fields.items() if name not in values and _required(field)]
    if missing:
        raise wording.fault(wording.missing.format(field=_dotted(where, missing[0])))
    hints = field_types(cls)
    values = {key: coerce(value, hints[key], _dotted(where, key), wording, check=check_types)
              for key, value in values.items()}  # fmt: skip
    if wording is CONFIG:
        check_numbers(values, where)
    try:
        return cls(**values)
    except wording.error as error:
        if wording.relative and where and str(error).startswith(wording.field):
            raise wording.fault(f"{wording.field}{where}.{str(error).removeprefix(wording.field)}") from error
        raise


def coerce_fields(obj: Any, wording: Wording) -> None:
    """Check every field of a frozen dataclass instance against its annotation (from its ``__post_init__``), storing
    the coerced value: what :func:`from_mapping` does to a mapping, for an object built directly."""
    hints = field_types(type(obj))
    for field in dataclasses.fields(obj):
        value = coerce(getattr(obj, field.name), hints[field.name], field.name, wording, check=True)
        object.__setattr__(obj, field.name, value)


def _union_inner(value: Any, args: tuple[Any, ...]) -> Any:
    """The member of a union annotation that ``value`` takes: the only one besides None, the list or tuple member for
    a list, else Any (the config's own checks judge it)."""
    inner = [arg for arg in args if arg is not type(None)]
    if len(inner) == 1:
        return inner[0]
    sequences = [arg for arg in inner if typing.get_origin(arg) in (list, tuple)]
    return sequences[0] if sequences and isinstance(value, list | tuple) else Any


def coerce(value: Any, annotation: Any, field: str, wording: Wording, *, check: bool = True) -> Any:
    """``value`` in the shape of ``annotation`` (see :func:`from_mapping`), or ``wording.error`` naming ``field``.
    Without ``check``, only the shape: nested dataclasses, lists and tuples."""
    if type(value) is annotation and annotation in (str, int, float, bool):  # the common case, fast
        return value
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return coerce(value, _union_inner(value, args), field, wording, check=check)
    if annotation is Any:
        return _plain(value, field, wording) if check and wording.relative else value
    if origin is Literal:
        if check and value not in args:
            raise wording.fault(f"{wording.field}{field}={value!r} must be one of {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):  # type: ignore[arg-type]
            return value
        return from_mapping(annotation, value, field, check_types=check, wording=wording)  # type: ignore[arg-type]
    if origin in (list, tuple):
        return _sequence(value, annotation, field, wording, check=check)
    if origin is dict:
        if not check:
            return value
        if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
            raise wording.fault(f"{wording.field}{field} must be {wording.mapping} with string keys, got "
                                f"{type(value).__name__}")  # fmt: skip
        return {key: coerce(item, args[1], _dotted(field, key), wording) for key, item in value.items()}
    if not check or annotation not in wording.kinds:
        return value
    if wording.text_numbers:
        value = _number_from_text(value, annotation)
    plain = _scalar(value, annotation, field, wording)
    if plain is _WRONG:
        raise wording.wrong(field, value, wording.kinds[annotation])
    return plain


_WRONG = object()


def _scalar(value: Any, kind: type, field: str, wording: Wording) -> Any:
    """``value`` as a plain ``kind`` (numpy scalars and, for floats, integers accepted), or ``_WRONG``."""
    if kind is bool:
        return bool(value) if isinstance(value, bool | np.bool_) else _WRONG
    if kind is int:
        return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else _WRONG
    if kind is float:
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            return _WRONG
        try:
            return float(value)
        except OverflowError:  # an integer beyond float's range (JSON integers are unbounded)
            raise wording.fault(f"{wording.field}{field} is an integer beyond a float's range") from None
    return value if isinstance(value, kind) else _WRONG


def _sequence(value: Any, annotation: Any, field: str, wording: Wording, *, check: bool) -> Any:
    """A list or tuple field: lists of dataclasses item by item (each named by its index), lists of scalars as a
    whole (the line shows the whole list and what it must be)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    shape = tuple if origin is tuple else list
    if not isinstance(value, list | tuple):
        if not check:
            return value
        scalars = origin is tuple and all(arg in wording.kinds or arg is Ellipsis for arg in args)
        raise wording.wrong(field, value, _list_of(args, wording) if scalars else "a list")
    if origin is tuple and args and args[-1] is not Ellipsis:
        kinds = list(args)
        if len(value) != len(kinds):
            if not check:
                return value
            raise wording.wrong(field, value, _list_of(args, wording))
    else:
        kinds = [args[0] if args else Any] * len(value)
    if check and all(kind in wording.kinds for kind in kinds):
        items = [_scalar(_number_from_text(v, k) if wording.text_numbers else v, k, field, wording)
                 for v, k in zip(value, kinds, strict=True)]  # fmt: skip
        if any(item is _WRONG for item in items):
            raise wording.wrong(field, value, _list_of(args, wording))
        return shape(items)
    items = zip(value, kinds, strict=True)
    return shape(coerce(v, k, f"{field}[{i}]", wording, check=check) for i, (v, k) in enumerate(items))


def _list_of(args: tuple[Any, ...], wording: Wording) -> str:
    """What a list of scalars must be: "a list of 2 numbers", "a list of whole numbers"."""
    kinds = [arg for arg in args if arg is not Ellipsis]
    count = f"{len(kinds)} " if args and args[-1] is not Ellipsis else ""
    if wording is CONFIG:
        noun = "numbers" if float in kinds else ("whole numbers" if int in kinds else "true/false values")
    else:
        noun = " and ".join(sorted({wording.kinds[kind] for kind in kinds}))
    return f"a list of {count}{noun}"


def _number_from_text(value: Any, annotation: Any) -> Any:
    """A number written as text, for a number field, as that number: YAML 1.1 (Hydra's) reads ``5.9e21`` (no
    exponent sign) and ``1e3`` as strings. Anything else is returned as it is, for the type check to judge."""
    if annotation not in (int, float) or not isinstance(value, str):
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return number if annotation is float else (int(number) if number.is_integer() else value)


def _plain(value: Any, field: str, wording: Wording) -> Any:
    """A deep copy of a free-form value made of JSON types (dict, list, str, int, float, bool, None)."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item, _dotted(field, str(key)), wording) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, f"{field}[{index}]", wording) for index, item in enumerate(value)]
    raise wording.fault(
        f"{wording.field}{field} is a {type(value).__name__}, not a JSON value: "
        "pass OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)"
    )


# ----------------------------------------------------------------------------------------------------------------
# Defaults as plain data


def defaults_of(cls: type, *, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """The defaults of dataclass ``cls`` as plain data (tuples as lists, nested dataclasses as mappings, a required
    field as :data:`MISSING`): the node Hydra's ConfigStore holds for a config whose YAML file keeps only what
    differs, so that every default has one source, the dataclass. ``leave_out`` names fields that are not settings
    of the config file (set by the command from elsewhere)."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in leave_out:
            continue
        if field.default_factory is not dataclasses.MISSING:
            value: Any = field.default_factory()
        elif field.default is not dataclasses.MISSING:
            value = field.default
        else:
            value = MISSING
        values[field.name] = _as_plain_data(value)
    return values


def _as_plain_data(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {key: _as_plain_data(item) for key, item in dataclasses.asdict(value).items()}
    if isinstance(value, list | tuple):
        return [_as_plain_data(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _as_plain_data(item) for key, item in value.items()}
    return value
