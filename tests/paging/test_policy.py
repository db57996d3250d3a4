"""Issue 29, item 4 (the pure rules): who gets paged, when, and how an alert reads on a pager."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from securitybot.config import BusinessHoursConfig
from securitybot.paging.policy import (
    Timing,
    Vendor,
    opsgenie_message,
    opsgenie_priority,
    pager_summary,
    pagerduty_severity,
    plain_line,
    when_to_page,
)

HOURS = BusinessHoursConfig(days=["mon", "tue", "wed", "thu", "fri"], start="09:00", end="18:00",
                            default_tz="Europe/Paris")  # fmt: skip
MONDAY_10_PARIS = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # 10:00 in Paris
MONDAY_7_PARIS = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)
SATURDAY_NOON = datetime(2025, 3, 8, 11, 0, tzinfo=UTC)
DEFAULTS = frozenset({"high", "critical"})


def timing(severity: str, *, page: str = "default", when: str = "always",
           now: datetime = MONDAY_10_PARIS) -> Timing:  # fmt: skip
    return when_to_page(when=when, kind_page=page, severity=severity, severities=DEFAULTS,
                        now=now, hours=HOURS)  # fmt: skip


def test_high_and_critical_page_by_default_and_lower_severities_do_not() -> None:
    assert timing("critical") is Timing.NOW
    assert timing("high") is Timing.NOW
    assert timing("medium") is Timing.NEVER
    assert timing("low") is Timing.NEVER


def test_a_kind_can_always_or_never_page_whatever_its_severity() -> None:
    assert timing("low", page="always") is Timing.NOW
    assert timing("critical", page="never") is Timing.NEVER


def test_unclaimed_after_claim_timeout_waits_for_the_claim_clock() -> None:
    assert timing("high", when="unclaimed_after_claim_timeout") is Timing.AFTER_CLAIM_TIMEOUT
    assert timing("medium", when="unclaimed_after_claim_timeout") is Timing.NEVER


def test_outside_business_hours_pages_only_when_nobody_is_at_their_desk() -> None:
    def when(now: datetime) -> Timing:
        return timing("high", when="outside_business_hours", now=now)

    assert when(MONDAY_10_PARIS) is Timing.NEVER
    assert when(MONDAY_7_PARIS) is Timing.NOW
    assert when(SATURDAY_NOON) is Timing.NOW
    assert timing("low", page="always", when="outside_business_hours") is Timing.NEVER


def test_outside_business_hours_needs_a_calendar() -> None:
    with pytest.raises(ValueError, match="business_hours"):
        when_to_page(when="outside_business_hours", kind_page="default", severity="high",
                     severities=DEFAULTS, now=MONDAY_10_PARIS, hours=None)  # fmt: skip


def test_severities_map_onto_each_vendors_scale() -> None:
    assert [pagerduty_severity(s) for s in ("critical", "high", "medium", "low")] == [
        "critical", "error", "warning", "info"]  # fmt: skip
    assert [opsgenie_priority(s) for s in ("critical", "high", "medium", "low")] == [
        "P1", "P2", "P3", "P4"]  # fmt: skip


def test_text_from_a_tool_becomes_one_plain_line() -> None:
    assert plain_line("a\nb\r\n\tc\u202ed\u0000e  f") == "a b c[U+202E]d e f"


@pytest.mark.parametrize("vendor", list(Vendor))
def test_summaries_fit_each_vendors_limit(vendor: Vendor) -> None:
    long_title = "x" * 5000
    summary = pager_summary(severity="high", title=long_title, user="alice@example.com",
                            reason="not_me", limit=vendor.summary_limit)  # fmt: skip
    assert len(summary) == vendor.summary_limit
    assert summary.endswith("…")
    short = pager_summary(severity="high", title="flurb -export", user="alice@example.com",
                          reason="not_me", limit=vendor.summary_limit)  # fmt: skip
    assert short == "Securitybot high: flurb -export (alice@example.com, not_me)"


def test_pagerduty_allows_1024_characters_and_opsgenie_130() -> None:
    assert Vendor.PAGERDUTY.summary_limit == 1024
    assert Vendor.OPSGENIE.summary_limit == 130
    assert len(opsgenie_message("y" * 400)) == 130
