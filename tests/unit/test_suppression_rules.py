"""Suppression matching, slash-command parsing and the summary's schedule, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from securitybot.flows import suppressions
from securitybot.flows.suppression_summary import due, next_run
from securitybot.slack.commands import Invalid, ListRules, Revoke, Suppress, parse_command
from securitybot.slack.dates import slack_date
from securitybot.store.models import Alert

MAX = timedelta(days=30)


def alert(**kw: object) -> Alert:
    base: dict[str, object] = {"kind": "sensitive_command", "source": "ci", "severity": "high",
                               "details": {"host": "build-07", "count": 3}}  # fmt: skip
    return Alert(**{**base, **kw})


@pytest.mark.parametrize(
    ("matchers", "hit"),
    [
        ({}, True),  # every alert of the kind
        ({"host": "build-*"}, True),
        ({"host": "build-0?"}, True),
        ({"host": "Build-*"}, False),  # case-sensitive, as hostnames in logs are compared
        ({"host": "build"}, False),  # the whole value, not a substring
        ({"source": "ci"}, True),  # the alert's own column
        ({"severity": "low"}, False),
        ({"count": "3"}, True),  # detail values compared as text
        ({"owner": "*"}, False),  # a field the alert lacks never matches, even with *
        ({"host": "build-*", "source": "siem"}, False),  # all must match
    ],
)
def test_matchers_are_whole_value_globs_on_fields(matchers: dict[str, str], hit: bool) -> None:
    assert suppressions.matches("sensitive_command", matchers, alert()) is hit


def test_another_kind_never_matches() -> None:
    assert not suppressions.matches("new_login_location", {}, alert())


def test_suppress_parses_kind_matchers_duration_and_reason() -> None:
    parsed = parse_command("suppress sensitive_command host=build-* source=ci 4h CI rebuild  now",
                           max_exemption=MAX)  # fmt: skip
    assert parsed == Suppress("sensitive_command", timedelta(hours=4), "CI rebuild  now",
                              {"host": "build-*", "source": "ci"})  # fmt: skip
    assert parse_command("rules", max_exemption=MAX) == ListRules()
    assert parse_command("revoke R3", max_exemption=MAX) == Revoke("rule", 3)
    assert parse_command("revoke rule 3", max_exemption=MAX) == Revoke("rule", 3)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("suppress", "Usage"),
        ("suppress Sensitive 1h x", "not an alert kind"),
        ("suppress sensitive_command host=a host=b 1h x", "given twice"),
        ("suppress sensitive_command =x 1h x", "not a field name"),
        ("suppress sensitive_command host= 1h x", "printable"),
        ("suppress sensitive_command 8d x", "at most 7d"),  # the default cap
        ("suppress sensitive_command 12 x", "not a duration"),  # a unit is required
    ],
)
def test_bad_suppress_commands_say_why(text: str, why: str) -> None:
    parsed = parse_command(text, max_exemption=MAX)
    assert isinstance(parsed, Invalid) and why in parsed.message


def test_slack_dates_carry_a_utc_fallback_and_nothing_that_breaks_the_token() -> None:
    at = datetime(2026, 3, 1, 8, 5, tzinfo=UTC)
    assert slack_date(at) == (
        f"<!date^{int(at.timestamp())}^{{date_short_pretty}} at {{time}}|2026-03-01 08:05 UTC>"
    )
    with pytest.raises(ValueError):
        slack_date(datetime(2026, 3, 1, 8, 5))  # a naive time is refused


def test_the_summary_runs_at_the_next_configured_time() -> None:
    nine = time(9, 0)
    before = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    after = datetime(2026, 3, 1, 9, 0, 30, tzinfo=UTC)
    assert next_run(before, nine) == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert next_run(after, nine) == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert due(nine, after) == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)  # the run just started
