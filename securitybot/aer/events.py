"""Activity events: the model the AER engine consumes, and strict parsing of untrusted input.

Parsing is the only place that sees raw JSON, so every check happens here once; the engine can
then trust its input and stay fast. A bad event is rejected with the field and a reason the
sender can act on, and in a batch one bad entry never sinks the others.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from securitybot import untrusted

MAX_BATCH_EVENTS = 10_000
MAX_COUNT = 1_000_000
# Clocks drift; five minutes tolerates that while refusing events that would sit in a future
# hour bucket and distort its volume counter.
MAX_FUTURE_SKEW = timedelta(minutes=5)
_MAX_ASN = 4_294_967_295
_MAX_TEXT = {"org": 64, "session": 256, "user_agent": 1024, "client": 64}

_USER_RE = re.compile(r"^[UW][A-Z0-9]{2,30}$")  # user_id columns are 32 wide
_ACTION_RE = re.compile(r"^[a-z_]{1,40}$")
_COUNTRY_RE = re.compile(r"^[A-Za-z]{2}$")
_ASN_RE = re.compile(r"^[Aa][Ss](\d{1,10})$")

JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset(
    {"application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines"}
)


class EventError(ValueError):
    """One event is invalid; ``field`` names the offending key so the sender can fix it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class BatchError(ValueError):
    """The whole request body is unusable (not JSON, wrong content type, too many events)."""


@dataclass(slots=True, frozen=True)
class ActivityEvent:
    org: str
    user: str
    ts: datetime
    action: str
    session: str | None = None
    ip: str | None = None
    asn: int | None = None
    country: str | None = None
    user_agent: str | None = None
    client: str | None = None
    count: int = 1
    details: dict[str, Any] = field(default_factory=dict)


def _ts_utc(value: datetime) -> datetime:
    try:  # years near 1 or 9999 would overflow in astimezone
        return untrusted.utc_time(value)
    except ValueError as exc:
        raise EventError("ts", f"{value.isoformat()} {exc}") from None


def _text(obj: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise EventError(key, "is required")
        return None
    if not isinstance(value, str):
        raise EventError(key, f"must be a string, not {type(value).__name__}")
    if not value:
        if required:
            raise EventError(key, "must not be empty")
        return None
    if "\x00" in value:  # PostgreSQL text cannot store NUL: refuse it here, not at insert
        raise EventError(key, "must not contain NUL characters")
    limit = _MAX_TEXT.get(key)
    if limit is not None and len(value) > limit:
        raise EventError(key, f"is longer than {limit} characters")
    return value


def _parse_ts(value: Any, now: datetime) -> datetime:
    if value is None:
        return now
    if isinstance(value, bool):
        raise EventError("ts", "must be an ISO 8601 string or epoch seconds, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise EventError("ts", "epoch seconds must be a finite number")
        try:
            ts = _ts_utc(datetime.fromtimestamp(value, UTC))
        except (OverflowError, OSError, ValueError):
            raise EventError("ts", f"epoch seconds {value!r} are out of range") from None
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise EventError(
                "ts", f"{value[:40]!r} is not ISO 8601 (e.g. 2024-05-01T12:00:00Z)"
            ) from None
        ts = _ts_utc(parsed)
    else:
        raise EventError("ts", "must be an ISO 8601 string or epoch seconds")
    if ts - now > MAX_FUTURE_SKEW:
        raise EventError("ts", f"{ts.isoformat()} is more than 5 minutes in the future")
    return ts


def _parse_asn(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and (m := _ASN_RE.match(value.strip())):
        value = int(m.group(1))
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError("asn", "must be an integer or a string like 'AS13335'")
    if not 0 < value <= _MAX_ASN:
        raise EventError("asn", f"{value} is not a valid AS number")
    return value


def _parse_ip(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise EventError("ip", "must be a string")
    return _canonical_ip(value)


@lru_cache(maxsize=65_536)  # a user's events come from a handful of addresses
def _canonical_ip(value: str) -> str:
    try:
        addr = ipaddress.ip_address(value.strip())
    except ValueError:
        raise EventError("ip", f"{value[:64]!r} is not an IPv4 or IPv6 address") from None
    # One canonical spelling per address so the Tor set, indicator lists and the engine's IP
    # cache all match "::ffff:1.2.3.4" and "1.2.3.4" alike.
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def _parse_count(value: Any) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError("count", "must be an integer")
    if not 1 <= value <= MAX_COUNT:
        raise EventError("count", f"must be between 1 and {MAX_COUNT:,}")
    return value


def parse_event(obj: Any, now: datetime) -> ActivityEvent:
    """Validate one decoded JSON object. ``now`` fills a missing ``ts`` and bounds future ones."""
    if not isinstance(obj, Mapping):
        raise EventError("(event)", "must be a JSON object")
    now = untrusted.utc_time(now)
    org = _text(obj, "org", required=True)
    user = _text(obj, "user", required=True)
    assert org is not None and user is not None
    if not _USER_RE.match(user):
        raise EventError("user", f"{user[:32]!r} does not look like a Slack user id (U123ABC)")
    action = obj.get("action")
    if not isinstance(action, str) or not _ACTION_RE.match(action):
        raise EventError("action", "is required: lowercase letters and '_', at most 40")
    country = obj.get("country")
    if country is not None:
        if not isinstance(country, str) or not _COUNTRY_RE.match(country):
            raise EventError("country", "must be a 2-letter ISO 3166 code such as 'DE'")
        country = country.upper()
    details = obj.get("details")
    if details is None:
        details = {}
    elif not isinstance(details, dict):
        raise EventError("details", "must be a JSON object")
    return ActivityEvent(
        org=org,
        user=user,
        ts=_parse_ts(obj.get("ts"), now),
        action=action,
        session=_text(obj, "session"),
        ip=_parse_ip(obj.get("ip")),
        asn=_parse_asn(obj.get("asn")),
        country=country,
        user_agent=_text(obj, "user_agent"),
        client=_text(obj, "client"),
        count=_parse_count(obj.get("count")),
        details=details,
    )


def _entries(body: bytes, content_type: str) -> list[tuple[int, Any]]:
    media = content_type.split(";", 1)[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BatchError("body is not valid UTF-8") from None
    if media in JSON_TYPES:
        try:
            data = untrusted.loads(text)
        except json.JSONDecodeError as exc:
            raise BatchError(f"body is not valid JSON (line {exc.lineno})") from None
        except untrusted.UnsafeJson as exc:
            raise BatchError(f"body {exc.reason}") from None
        if not isinstance(data, list):
            raise BatchError("a JSON body must be an array of events")
        if len(data) > MAX_BATCH_EVENTS:
            raise BatchError(
                f"{len(data):,} events in one batch; the limit is {MAX_BATCH_EVENTS:,}"
            )
        return list(enumerate(data))
    if media in NDJSON_TYPES:
        lines = [(i, line) for i, line in enumerate(text.splitlines()) if line.strip()]
        if len(lines) > MAX_BATCH_EVENTS:
            raise BatchError(
                f"{len(lines):,} events in one batch; the limit is {MAX_BATCH_EVENTS:,}"
            )
        out: list[tuple[int, Any]] = []
        for i, line in lines:
            try:
                out.append((i, untrusted.loads(line)))
            except (json.JSONDecodeError, untrusted.UnsafeJson):
                out.append((i, _BadLine))
        return out
    raise BatchError(
        f"unsupported content type {media!r}; use application/json or application/x-ndjson"
    )


class _BadLine:
    """Marker for an NDJSON line that is not JSON, so it is rejected in place, by index."""


def parse_batch(
    body: bytes, content_type: str, now: datetime
) -> tuple[list[tuple[int, ActivityEvent]], list[dict[str, Any]]]:
    """Parse a JSON array or NDJSON body into ``(accepted, rejected)``.

    ``index`` is the position in the input: the array element, or the 0-based line for NDJSON
    (blank lines are skipped but keep their numbers, so an index points at the line to fix).
    """
    accepted: list[tuple[int, ActivityEvent]] = []
    rejected: list[dict[str, Any]] = []
    refused_before = untrusted.Refused.made
    entries = _entries(body, content_type)
    # NaN, huge numbers, lone surrogates are refused per event; when the parse made no
    # Refused marker and the body has no surrogate escape, there is nothing to look for.
    check = untrusted.Refused.made != refused_before or untrusted.may_hold_surrogates(body)
    for index, obj in entries:
        if obj is _BadLine:
            rejected.append({"index": index, "field": "(event)", "error": "line is not valid JSON"})
            continue
        try:
            if check:
                untrusted.check(obj)  # this event only
            accepted.append((index, parse_event(obj, now)))
        except untrusted.UnsafeJson as exc:
            rejected.append({"index": index, "field": exc.field, "error": str(exc)})
        except EventError as exc:
            rejected.append({"index": index, "field": exc.field, "error": str(exc)})
    return accepted, rejected
