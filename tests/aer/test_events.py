from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from securitybot.aer.events import (
    MAX_BATCH_EVENTS,
    ActivityEvent,
    BatchError,
    EventError,
    parse_batch,
    parse_event,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def raw(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "org": "T0ACME",
        "user": "U0123ABC",
        "ts": "2024-05-01T11:59:00Z",
        "action": "file_download",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def field_error(obj: Any) -> str:
    with pytest.raises(EventError) as info:
        parse_event(obj, NOW)
    return info.value.field


def test_minimal_event_gets_defaults() -> None:
    ev = parse_event(raw(), NOW)
    assert ev == ActivityEvent("T0ACME", "U0123ABC", datetime(2024, 5, 1, 11, 59, tzinfo=UTC),
                               "file_download")  # fmt: skip
    assert ev.count == 1 and ev.details == {} and ev.session is None


def test_iso_offset_is_converted_to_utc() -> None:
    ev = parse_event(raw(ts="2024-05-01T13:30:00+02:00"), NOW)
    assert ev.ts == datetime(2024, 5, 1, 11, 30, tzinfo=UTC)
    assert ev.ts.tzinfo is UTC


def test_naive_iso_timestamp_is_taken_as_utc() -> None:
    expected = datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert parse_event(raw(ts="2024-05-01T10:00:00"), NOW).ts == expected


@pytest.mark.parametrize("epoch", [1714561200, 1714561200.0])
def test_epoch_seconds_int_and_float(epoch: float) -> None:
    assert parse_event(raw(ts=epoch), NOW).ts == datetime(2024, 5, 1, 11, 0, tzinfo=UTC)


def test_missing_ts_uses_the_now_passed_in() -> None:
    assert parse_event(raw(ts=...), NOW).ts == NOW


def test_now_with_other_offset_is_normalised() -> None:
    tz = timezone(timedelta(hours=-5))
    assert parse_event(raw(ts=...), NOW.astimezone(tz)).ts == NOW


def test_ts_more_than_five_minutes_ahead_is_rejected() -> None:
    assert field_error(raw(ts=(NOW + timedelta(minutes=6)).isoformat())) == "ts"


def test_ts_slightly_ahead_is_tolerated_as_clock_skew() -> None:
    ts = NOW + timedelta(minutes=4)
    assert parse_event(raw(ts=ts.timestamp()), NOW).ts == ts


@pytest.mark.parametrize("ts", ["yesterday", True, [1], float("nan"), 1e20])
def test_bad_ts_names_the_field(ts: Any) -> None:
    assert field_error(raw(ts=ts)) == "ts"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"org": ...}, "org"),
        ({"org": ""}, "org"),
        ({"org": 5}, "org"),
        ({"user": ...}, "user"),
        ({"user": "alice"}, "user"),
        ({"user": "u0123abc"}, "user"),
        ({"action": ...}, "action"),
        ({"action": "File-Download"}, "action"),
        ({"action": "x" * 41}, "action"),
        ({"count": 0}, "count"),
        ({"count": 1_000_001}, "count"),
        ({"count": "3"}, "count"),
        ({"count": True}, "count"),
        ({"asn": "ASX"}, "asn"),
        ({"asn": -1}, "asn"),
        ({"ip": "999.1.1.1"}, "ip"),
        ({"ip": 167772161}, "ip"),
        ({"country": "USA"}, "country"),
        ({"details": [1, 2]}, "details"),
        ({"session": 12}, "session"),
        ({"user_agent": "x" * 2000}, "user_agent"),
    ],
)
def test_invalid_fields_are_rejected_with_the_field_named(
    overrides: dict[str, Any], field: str
) -> None:
    assert field_error(raw(**overrides)) == field


def test_non_object_is_rejected() -> None:
    assert field_error(["not", "an", "object"]) == "(event)"


def test_error_message_is_clear() -> None:
    with pytest.raises(EventError, match=r"^user: 'alice' does not look like a Slack user id"):
        parse_event(raw(user="alice"), NOW)


def test_optional_fields_are_normalised() -> None:
    ev = parse_event(
        raw(asn="AS13335", ip="::ffff:198.51.100.7", country="de", count=7, session="S1",
            client="desktop", user_agent="Slack_SSB/4.1", details={"lat": 1.0}),
        NOW,
    )  # fmt: skip
    assert (ev.asn, ev.ip, ev.country, ev.count) == (13335, "198.51.100.7", "DE", 7)
    assert ev.details == {"lat": 1.0}


def test_ipv6_is_canonicalised() -> None:
    assert parse_event(raw(ip="2001:DB8:0:0::1"), NOW).ip == "2001:db8::1"


def test_unknown_fields_and_unknown_actions_are_allowed() -> None:
    ev = parse_event(raw(action="workflow_run", colour="blue"), NOW)
    assert ev.action == "workflow_run"


def test_batch_json_array_reports_a_bad_entry_by_index() -> None:
    body = json.dumps([raw(), raw(user="bob"), raw(count=2)]).encode()
    accepted, rejected = parse_batch(body, "application/json; charset=utf-8", NOW)
    assert [i for i, _ in accepted] == [0, 2]
    error = "user: 'bob' does not look like a Slack user id (U123ABC)"
    assert rejected == [{"index": 1, "field": "user", "error": error}]


def test_batch_ndjson_rejects_bad_lines_in_place() -> None:
    lines = [json.dumps(raw()), "", "{not json", json.dumps(raw(action=...)), json.dumps(raw())]
    accepted, rejected = parse_batch("\n".join(lines).encode(), "application/x-ndjson", NOW)
    assert [i for i, _ in accepted] == [0, 4]
    assert [(r["index"], r["field"]) for r in rejected] == [(2, "(event)"), (3, "action")]


def test_batch_over_the_limit_is_refused_whole() -> None:
    body = json.dumps([raw()] * (MAX_BATCH_EVENTS + 1)).encode()
    with pytest.raises(BatchError, match="limit is 10,000"):
        parse_batch(body, "application/json", NOW)
    nd = "\n".join([json.dumps(raw())] * (MAX_BATCH_EVENTS + 1)).encode()
    with pytest.raises(BatchError):
        parse_batch(nd, "application/x-ndjson", NOW)


def test_batch_at_the_limit_is_accepted() -> None:
    body = json.dumps([raw()] * MAX_BATCH_EVENTS).encode()
    accepted, rejected = parse_batch(body, "application/json", NOW)
    assert len(accepted) == MAX_BATCH_EVENTS and not rejected


@pytest.mark.parametrize(
    ("body", "ctype", "match"),
    [
        (b"{}", "application/json", "array"),
        (b"[", "application/json", "not valid JSON"),
        (b"\xff", "application/json", "UTF-8"),
        (b"[]", "text/plain", "unsupported content type"),
    ],
)
def test_unusable_bodies_raise_batch_error(body: bytes, ctype: str, match: str) -> None:
    with pytest.raises(BatchError, match=match):
        parse_batch(body, ctype, NOW)


@given(st.integers(min_value=946684800, max_value=int(NOW.timestamp())))
def test_epoch_and_iso_forms_agree(epoch: int) -> None:
    iso = datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
    assert parse_event(raw(ts=epoch), NOW).ts == parse_event(raw(ts=iso), NOW).ts


@pytest.mark.parametrize(
    "bad",
    [
        '{"org": "T1", "user": "UBOB", "action": "login", "count": NaN}',
        '{"org": "T1", "user": "UBOB", "action": "login", "details": {"x": 1e999}}',
        '{"org": "T1", "user": "UBOB", "action": "login", "details": {"x": ' + "9" * 50 + "}}",
        '{"org": "T1", "user": "UBOB", "action": "login", "client": "\\udfff"}',
        '{"org": "T1", "user": "UBOB", "action": "login", "details": {"\\uDbff": 1}}',
    ],
)
def test_the_fast_path_still_refuses_what_check_refuses(bad: str) -> None:
    # parse_batch skips the per-event scan when the body holds nothing it could find; a
    # batch holding one bad event must still refuse exactly that event.
    good = '{"org": "T1", "user": "UBOB", "action": "login", "client": "\\\\udfff"}'
    body = "\n".join([good, bad, good]).encode()
    accepted, rejected = parse_batch(body, "application/x-ndjson", NOW)
    assert [i for i, _ in accepted] == [0, 2]
    assert [r["index"] for r in rejected] == [1]
    assert accepted[0][1].client == "\\udfff"  # an escaped backslash is no surrogate
    alone, none = parse_batch(good.encode(), "application/x-ndjson", NOW)
    assert len(alone) == 1 and none == []
