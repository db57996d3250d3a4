"""Durations as responders type them in Slack: ``30m``, ``12h``, ``7d``, ``2w``."""

from __future__ import annotations

from datetime import timedelta

from securitybot.durations import parse_duration as config_duration


def parse_duration(raw: str) -> timedelta | None:
    """A duration such as ``30m``, ``12h``, ``7d`` or ``2w`` (config's syntax, plus weeks).
    A bare number would mean seconds there, which nobody exempting a person means: a unit is
    required."""
    raw = raw.lower()
    if not raw[-1:].isalpha():
        return None
    weeks = raw.endswith("w")  # config has no weeks; people exempting someone on leave do
    try:
        seconds = config_duration(raw[:-1] + "d" if weeks else raw)
        return timedelta(seconds=seconds * 7 if weeks else seconds)
    except (ValueError, OverflowError):
        return None


def describe(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
