"""Who gets paged, when, and how an alert reads on a pager (pure: no I/O, no clock).

The text that reaches a pager comes from monitoring tools (untrusted) and lands on a phone's
lock screen or in an SMS: it is made one plain line (no line breaks to forge a second "all
clear" line, no control or bidi-override characters to reorder it) and cut to the vendor's
documented length.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection
from datetime import datetime, time
from enum import Enum, StrEnum
from zoneinfo import ZoneInfo

from securitybot import untrusted
from securitybot.config import BusinessHoursConfig


class Timing(StrEnum):
    NOW = "now"  # at escalation
    AFTER_CLAIM_TIMEOUT = "after_claim_timeout"  # if still unclaimed after the claim clock
    NEVER = "never"


class Vendor(Enum):
    # The longest text each vendor takes for an alert's one-line summary: PagerDuty's
    # payload.summary (docs/events-API-v2/02-Trigger-Events.md: 1024 characters) and Opsgenie's
    # message (docs.opsgenie.com Alert API: 130 characters).
    PAGERDUTY = ("pagerduty", 1024)
    OPSGENIE = ("opsgenie", 130)

    def __init__(self, label: str, summary_limit: int) -> None:
        self.label = label
        self.summary_limit = summary_limit


_PAGERDUTY_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}
# P5 is left unused: our lowest severity still asks a person to look.
_OPSGENIE_PRIORITY = {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4"}


def pagerduty_severity(severity: str) -> str:
    """PagerDuty's ``payload.severity`` (critical, error, warning, info) for ours."""
    return _PAGERDUTY_SEVERITY.get(severity, "error")


def opsgenie_priority(severity: str) -> str:
    """Opsgenie's priority (P1 highest) for our severity."""
    return _OPSGENIE_PRIORITY.get(severity, "P3")


def in_business_hours(now: datetime, hours: BusinessHoursConfig) -> bool:
    """Whether ``now`` falls in the calendar's working hours, in its default time zone (the
    team's, where the alert's user's own zone does not matter)."""
    local = now.astimezone(ZoneInfo(hours.default_tz))
    opens = time.fromisoformat(hours.start)
    closes = time.fromisoformat(hours.end)
    return local.weekday() in hours.weekdays and opens <= local.time() < closes


def when_to_page(
    *,
    when: str,
    kind_page: str,
    severity: str,
    severities: Collection[str],
    now: datetime,
    hours: BusinessHoursConfig | None,
) -> Timing:
    """When an escalation of ``severity`` (a kind whose ``page`` is ``kind_page``) pages.

    ``page: never`` and ``page: always`` decide whom, before ``paging.severities``; ``when``
    then decides the moment. ``outside_business_hours`` pages only outside the calendar (during
    it the team is at its desks, reading the channel); it needs the calendar.
    """
    if when == "outside_business_hours" and hours is None:
        raise ValueError("paging.when outside_business_hours needs policy.business_hours")
    if kind_page == "never":
        return Timing.NEVER
    if kind_page != "always" and severity not in severities:
        return Timing.NEVER
    if when == "unclaimed_after_claim_timeout":
        return Timing.AFTER_CLAIM_TIMEOUT
    if when == "outside_business_hours":
        assert hours is not None
        return Timing.NEVER if in_business_hours(now, hours) else Timing.NOW
    return Timing.NOW


def plain_line(text: str) -> str:
    """``text`` as one line: bidirectional controls shown (``untrusted.shown``), other control,
    format (zero-width) and separator characters become spaces, runs of spaces one."""
    cleaned = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") or ch.isspace() else ch
        for ch in untrusted.shown(text)
    )
    return " ".join(cleaned.split())


def fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pager_summary(*, severity: str, title: str, user: str, reason: str | None, limit: int,
                  alerts: int = 1) -> str:  # fmt: skip
    """``Securitybot high: <title> (<user>, <reason>)``, one plain line within ``limit``."""
    what = plain_line(title)
    if alerts > 1:
        what = f"{alerts} alerts: {what}"
    who = ", ".join(plain_line(p) for p in (user, reason or "") if p)
    line = f"Securitybot {severity}: {what}" + (f" ({who})" if who else "")
    return fit(line, limit)


def opsgenie_message(text: str) -> str:
    return fit(plain_line(text), Vendor.OPSGENIE.summary_limit)
