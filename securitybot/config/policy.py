"""How long people have to answer, counted in business hours or not."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from securitybot.config.base import ClockTime, Duration, _Section

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BusinessHoursConfig(_Section):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default=["mon", "tue", "wed", "thu", "fri"], min_length=1
    )
    start: ClockTime = "09:00"
    end: ClockTime = "18:00"
    default_tz: str = "UTC"

    @model_validator(mode="after")
    def _order(self) -> BusinessHoursConfig:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.default_tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"default_tz {self.default_tz!r} is not a time zone") from None
        return self

    @property
    def weekdays(self) -> frozenset[int]:
        return frozenset(_DAYS.index(d) for d in self.days)


class PolicyConfig(_Section):
    ack_timeout: Duration = 600.0
    duo_timeout: Duration = 120.0
    # Count the answer deadline in business hours, in the user's own time zone (from Slack).
    business_hours: BusinessHoursConfig | None = None
    # One reminder DM halfway to the deadline.
    reminder: bool = True
