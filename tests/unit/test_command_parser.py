"""``/securitybot`` text as typed in Slack, parsed without Slack or a database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from securitybot.slack.commands import (
    Exempt,
    Help,
    Invalid,
    ListExemptions,
    ListSnoozes,
    Revoke,
    parse_command,
)

MAX = timedelta(days=30)


def parse(text: str) -> object:
    return parse_command(text, max_exemption=MAX)


def test_an_escaped_mention_a_duration_and_a_reason_make_an_exemption() -> None:
    assert parse("exempt <@U0BOB|bob> 7d on leave until March") == Exempt(
        "U0BOB", timedelta(days=7), "on leave until March"
    )
    assert parse("EXEMPT <@W0BOB> 30m deploying") == Exempt(
        "W0BOB", timedelta(minutes=30), "deploying"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("help", Help()),
        ("exemptions", ListExemptions()),
        ("snoozes", ListSnoozes()),
        ("revoke E12", Revoke("exemption", 12)),
        ("revoke s7", Revoke("snooze", 7)),
        ("revoke exemption 12", Revoke("exemption", 12)),
        ("revoke snooze #7", Revoke("snooze", 7)),
    ],
)
def test_the_other_commands(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("exempt @bob 1d on leave", "not a Slack user mention"),
        ("exempt <@U0BOB|bob> forever on leave", "not a duration"),
        ("exempt <@U0BOB|bob> 0d on leave", "not a duration"),
        ("exempt <@U0BOB|bob> 31d on leave", "at most 30d"),
        ("exempt <@U0BOB|bob> 5w on leave", "at most 30d"),
        ("exempt <@U0BOB|bob> 1d", "Usage"),
        ("revoke 12", "revoke E12"),
        ("revoke E", "revoke E12"),
        ("exempt <@U0BOB|bob> 1d " + "x" * 2001, "2000 characters"),
        ("sudo <!channel>", "Unknown command `sudo`"),
    ],
)
def test_what_cannot_be_done_is_explained(text: str, says: str) -> None:
    result = parse(text)
    assert isinstance(result, Invalid)
    assert says in result.message
    assert "<!" not in result.message and "<@" not in result.message
