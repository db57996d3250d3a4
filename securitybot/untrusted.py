"""Decoding untrusted JSON and times, once, before anything touches the database.

Every entry point that reads a body (alerts, adapter webhooks, events) decodes through
:func:`loads` and checks with :func:`check`, so one mechanism refuses what the stdlib would
accept but the rest of the service cannot handle:

- nesting deep enough to raise ``RecursionError`` in ``json`` (or later in the JSON encoder of
  the database driver): measured on the text before parsing, so nothing recurses;
- ``NaN``/``Infinity`` and floats such as ``1e999`` that overflow to infinity: PostgreSQL's
  ``jsonb`` refuses them at insert, SQLite stores them and the listing's encoder then fails;
- integers with thousands of digits: ``int()`` refuses more than 4,300 digits with a
  ``ValueError`` (CPython's ``sys.int_info.str_digits_check_threshold`` guard);
- lone surrogates (``"\\udfff"``), valid JSON escapes that cannot be encoded as UTF-8, so the
  response (and PostgreSQL) fail on them.

Bad numbers are not raised at parse time but left as :class:`Refused` markers, so a batch can
reject only the entry that holds one (see ``securitybot.aer.events``).
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

# Real payloads (Alertmanager, Datadog, Grafana...) nest a handful of levels.
MAX_DEPTH = 64
# Longer than any 128-bit id, far short of int()'s 4,300-digit guard.
MAX_INT_DIGITS = 40
# Times outside these years are mistakes, and near datetime's own limits (years 1 and 9999)
# converting to UTC overflows.
MIN_YEAR, MAX_YEAR = 1970, 9998

# Ids are BIGINT: anything larger cannot name a row, and must not reach the database driver.
MAX_DB_ID = 2**63 - 1

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class UnsafeJson(ValueError):
    """The input cannot be stored safely; ``field`` is a dotted path to the offending value."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


class Refused:
    """Stands in for a number the parser would not take, until :func:`check` reports it."""

    __slots__ = ("reason",)
    # How many were ever made: a caller that sees it unchanged across a parse knows the result
    # holds none (it only grows, so a concurrent parse can only make a caller check more).
    made = 0

    def __init__(self, reason: str) -> None:
        self.reason = reason
        Refused.made += 1


def _constant(name: str) -> Refused:
    return Refused(f"{name} is not a number JSON allows")


def _int(text: str) -> int | Refused:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return Refused(f"an integer of more than {MAX_INT_DIGITS} digits")
    return int(text)


def _float(text: str) -> float | Refused:
    value = float(text)
    return value if math.isfinite(value) else Refused(f"{text[:40]} is out of range")


def depth(text: str) -> int:
    """How deeply arrays/objects nest in ``text``, without parsing (so without recursion)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def loads(text: str | bytes) -> Any:
    """``json.loads`` that cannot blow the stack and leaves bad numbers as :class:`Refused`.

    Raises ``json.JSONDecodeError``/``UnicodeDecodeError`` for malformed input and
    :class:`UnsafeJson` for nesting over :data:`MAX_DEPTH`.
    """
    if isinstance(text, bytes):
        text = text.decode(json.detect_encoding(text))
    # Few brackets in all (the usual alert) cannot nest too deep: skip the scan.
    if text.count("[") + text.count("{") > MAX_DEPTH and depth(text) > MAX_DEPTH:
        raise UnsafeJson("(body)", f"nests deeper than {MAX_DEPTH} levels")
    return _DECODER.decode(text)


# One decoder for every call: json.loads with hooks would build a new one each time.
_DECODER = json.JSONDecoder(parse_constant=_constant, parse_int=_int, parse_float=_float)


def may_hold_surrogates(text: bytes) -> bool:
    """False when no string decoded from the UTF-8 JSON ``text`` can hold a lone surrogate:
    they only come from ``\\uD800``-``\\uDFFF`` escapes (UTF-8 cannot carry them raw)."""
    return b"\\ud" in text or b"\\uD" in text


def _has_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def check(value: Any, path: str = "") -> None:
    """Raise :class:`UnsafeJson` at the first refused number or lone surrogate in ``value``."""
    here = path or "(body)"
    if isinstance(value, Refused):
        raise UnsafeJson(here, value.reason)
    if isinstance(value, str):
        if _has_surrogate(value):
            raise UnsafeJson(here, "contains a lone UTF-16 surrogate (not valid Unicode)")
    elif isinstance(value, dict):
        for key, item in value.items():
            if _has_surrogate(key):
                raise UnsafeJson(here, "a key contains a lone UTF-16 surrogate")
            check(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check(item, f"{path}[{index}]" if path else f"[{index}]")


def db_id(value: int) -> int | None:
    """``value`` if a BIGINT id column could hold it, else None (so: no such row, a 404)."""
    return value if 0 <= value <= MAX_DB_ID else None


def utc_time(value: datetime) -> datetime:
    """``value`` in UTC (naive taken as UTC), or ``ValueError`` if outside the sane years.

    Checked before converting: ``0001-01-01T00:00:00+14:00`` and ``9999-12-31T23:59:59-14:00``
    raise ``OverflowError`` in ``astimezone``.
    """
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"must be between the years {MIN_YEAR} and {MAX_YEAR}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def scrub(value: Any) -> Any:
    """A copy safe to encode: lone surrogates become U+FFFD, non-finite floats ``None``.

    For rows stored by older versions, which validated less: they must still list.
    """
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


# -- Showing untrusted text -------------------------------------------------------------------

# Unicode's bidirectional formatting characters (UAX #9): embeddings and overrides
# U+202A-U+202E, isolates U+2066-U+2069, and the marks U+200E, U+200F, U+061C. One of them in an
# alert's title makes the rest read backwards ("Trojan Source", CVE-2021-42574) in Slack, the
# dashboard or a pager, so a responder would read another command or host than the one sent.
BIDI_CONTROLS = frozenset([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C])
_BIDI_SHOWN = {cp: f"[U+{cp:04X}]" for cp in BIDI_CONTROLS}


def shown(text: str) -> str:
    """``text`` as it may be shown to a person: each bidirectional control becomes a visible,
    inert ``[U+202E]``, so nothing reorders what follows and the reader sees that it was there.

    Every surface that shows untrusted text calls this (Slack mrkdwn and plain text through
    ``securitybot.slack.mrkdwn``, the dashboard's templates, paging summaries); what is stored,
    the API's JSON and the exports keep the text as it was sent.
    """
    # Most text holds none: a scan for the rare code points is cheaper than translate().
    if text.isascii():
        return text
    return text.translate(_BIDI_SHOWN)
