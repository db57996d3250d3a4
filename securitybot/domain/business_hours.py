"""Deadlines counted in business hours, in the user's own time zone (pure, no I/O).

Nobody should be escalated for sleeping: ten minutes to answer at 23:50 on a Friday means ten
working minutes, i.e. Monday 09:10 where the user lives.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def add_business_seconds(
    start: datetime,
    seconds: float,
    *,
    tz: ZoneInfo,
    weekdays: frozenset[int],
    opens: time,
    closes: time,
) -> datetime:
    """``start`` + ``seconds`` of working time; returns an aware UTC-comparable datetime."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    if not weekdays or opens >= closes:
        raise ValueError("business hours need at least one day and opens < closes")
    local = start.astimezone(tz)
    remaining = timedelta(seconds=seconds)
    for _ in range(3700):  # about ten years of days: a hard bound instead of `while True`
        day_open = datetime.combine(local.date(), opens, tz)
        day_close = datetime.combine(local.date(), closes, tz)
        if local.weekday() in weekdays and local < day_close:
            begin = max(local, day_open)
            available = day_close - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        nxt = local.date() + timedelta(days=1)
        local = datetime.combine(nxt, time(0, 0), tz)
    raise ValueError("deadline is unreasonably far away")


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))
