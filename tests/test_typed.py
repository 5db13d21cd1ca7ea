"""The one coercion engine: typed dataclasses from plain data, each fault one line naming the dotted field."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from scaling_lab.errors import ConfigError, TableError
from scaling_lab.typed import CONFIG, MISSING, RECORD, defaults_of, from_mapping


@dataclass(frozen=True, kw_only=True)
class Inner:
    rate: float = 0.5
    count: int | None = None


@dataclass(frozen=True, kw_only=True)
class Outer:
    name: str
    inner: Inner = field(default_factory=Inner)
    items: list[Inner] = field(default_factory=list)
    pair: tuple[float, float] = (1.0, 2.0)
    labels: tuple[str, ...] = ("a",)
    flag: bool = False


def test_nested_dataclasses_lists_tuples_and_numbers_take_their_annotations():
    values = {"name": "x", "inner": {"rate": 2, "count": np.int64(3)}, "items": [{"rate": 1}, Inner()],
              "pair": [3, "4.5"], "labels": ["b", "c"], "flag": np.bool_(True)}  # fmt: skip
    built = from_mapping(Outer, values, "", check_types=True)
    assert built == Outer(name="x", inner=Inner(rate=2.0, count=3), items=[Inner(rate=1.0), Inner()],
                          pair=(3.0, 4.5), labels=("b", "c"), flag=True)  # fmt: skip
    assert type(built.inner.rate) is float and type(built.inner.count) is int and built.flag is True
    assert type(built.pair) is tuple and type(built.items) is list


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"name": "x", "inner": {"rate": "fast"}}, r"^sec\.inner\.rate='fast' must be a number$"),
        ({"name": "x", "items": [{}, {"count": 1.5}]}, r"^sec\.items\[1\]\.count=1\.5 must be a whole number$"),
        ({"name": "x", "inner": {"speed": 1}}, r"^sec\.inner\.speed is not a setting: choose among count, rate$"),
        ({"name": "x", "pair": [1.0]}, r"^sec\.pair=\[1\.0\] must be a list of 2 numbers$"),
        ({"name": "x", "flag": "yes"}, r"^sec\.flag='yes' must be true or false$"),
        ({"name": "x", "inner": {"rate": float("nan")}}, r"^sec\.inner\.rate=nan is not a finite number"),
        ({"inner": {}}, r"^sec\.name is required"),
        ([1], r"^sec must be a mapping, got list$"),
    ],
)
def test_a_bad_config_value_is_one_line_naming_the_dotted_setting(values, message):
    with pytest.raises(ConfigError, match=message):
        from_mapping(Outer, values, "sec", check_types=True, wording=CONFIG)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"name": "x", "inner": {"rate": "fast"}}, r"^field inner\.rate='fast' must be float, got str$"),
        ({"name": "x", "items": [{}, {"size": 1}]}, r"^unknown field items\[1\]\.size: remove it"),
        ({"name": 3}, r"^field name=3 must be str, got int$"),
        ({}, r"^missing field name: the record is incomplete"),
        ({"name": "x", "items": {"rate": 1}}, r"^field items=\{'rate': 1\} must be a list, got dict$"),
    ],
)
def test_a_bad_record_value_is_one_line_naming_the_json_field(values, message):
    with pytest.raises(TableError, match=message):
        from_mapping(Outer, values, "", check_types=True, wording=RECORD)


def test_defaults_of_is_plain_data_with_required_fields_missing():
    assert defaults_of(Outer) == {"name": MISSING, "inner": {"rate": 0.5, "count": None}, "items": [],
                                  "pair": [1.0, 2.0], "labels": ["a"], "flag": False}  # fmt: skip
    assert "inner" not in defaults_of(Outer, leave_out=("inner",))
