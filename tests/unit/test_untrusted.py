"""The untrusted-JSON decoder: what it refuses, and what it must not mistake for a problem."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from securitybot.untrusted import MAX_DEPTH, UnsafeJson, check, db_id, depth, loads, scrub, utc_time


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert depth('{"a": "[[[[{{{{\\"[[[", "b": [[1]]}') == 3
    assert depth('{"a":"' + "[" * 200 + '\\"","b":[[1]]}') == 3
    assert loads('["' + "[" * 200 + '"]') == ["[" * 200]


def test_deep_nesting_is_refused_before_parsing() -> None:
    with pytest.raises(UnsafeJson, match="deeper than"):
        loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"a":{"b":[1,NaN]}}', "a.b[1]"),
        ('{"a":Infinity}', "a"),
        ('{"a":1e999}', "a"),
        ('{"a":' + "1" * 41 + "}", "a"),
        ('{"a":["ok","x\\udfff"]}', "a[1]"),
        ('{"a":{"\\ud800":1}}', "a"),
    ],
)
def test_refusals_name_the_path(text: str, field: str) -> None:
    with pytest.raises(UnsafeJson) as info:
        check(loads(text))
    assert info.value.field == field


def test_ordinary_json_passes_untouched() -> None:
    data = loads(b'{"n": 12345678901234567890, "f": 1.5, "s": "\\u00e9\\ud83d\\ude00", "l": []}')
    check(data)
    assert data == {"n": 12345678901234567890, "f": 1.5, "s": "é😀", "l": []}


@pytest.mark.parametrize(
    "value",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14))),
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
    ],
)
def test_times_outside_the_sane_years_are_a_value_error(value: datetime) -> None:
    with pytest.raises(ValueError, match="between the years"):
        utc_time(value)


def test_naive_times_are_utc() -> None:
    assert utc_time(datetime(2024, 5, 1, 12)) == datetime(2024, 5, 1, 12, tzinfo=UTC)


def test_scrub_and_db_id() -> None:
    assert scrub({"a\udfff": ["x\ud800", float("nan"), 1.5]}) == {"a\ufffd": ["x\ufffd", None, 1.5]}
    assert db_id(2**63 - 1) == 2**63 - 1
    assert db_id(2**63) is None
