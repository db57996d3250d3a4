from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from securitybot.domain.business_hours import add_business_seconds

LONDON = ZoneInfo("Europe/London")
WEEKDAYS = frozenset(range(5))


def deadline(start: datetime, seconds: float, tz: ZoneInfo = LONDON) -> datetime:
    return add_business_seconds(start, seconds, tz=tz, weekdays=WEEKDAYS, opens=time(9),
                                closes=time(18))  # fmt: skip


def test_within_working_hours_it_is_plain_addition() -> None:
    start = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # Tuesday 10:00 London
    assert deadline(start, 600) == datetime(2026, 11, 24, 10, 10, tzinfo=UTC)


def test_friday_night_counts_from_monday_morning() -> None:
    start = datetime(2026, 11, 27, 23, 50, tzinfo=UTC)  # Friday 23:50 London
    assert deadline(start, 600) == datetime(2026, 11, 30, 9, 10, tzinfo=UTC)


def test_time_left_at_closing_carries_over_to_the_next_working_day() -> None:
    start = datetime(2026, 11, 24, 17, 55, tzinfo=UTC)
    assert deadline(start, 600) == datetime(2026, 11, 25, 9, 5, tzinfo=UTC)


def test_the_users_own_time_zone_decides() -> None:
    # 17:00 UTC is 09:00 in Los Angeles: the working day has just begun there.
    start = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
    got = deadline(start, 600, ZoneInfo("America/Los_Angeles"))
    assert got == datetime(2026, 11, 24, 17, 10, tzinfo=UTC)


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError):
        deadline(datetime(2026, 11, 24, 10, 0), 60)
