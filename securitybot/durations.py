"""Durations as people write them in configuration: seconds, or ``"250ms"``, ``"90s"``,
``"10m"``, ``"1.5h"``, ``"2d"``. One parser for every section (core and AER alike)."""

from __future__ import annotations

import math
import re
from typing import Any

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any, *, zero_is_off: bool = False) -> float:
    """Seconds from a number or a duration string; raises ValueError with the reason.

    ``zero_is_off``: for intervals whose documented ``0`` switches something off.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 300, '90s', '10m', '1h'")
    if isinstance(value, int | float):
        if not math.isfinite(value):  # YAML's .inf and .nan are numbers too
            raise ValueError(f"{value!r} is not a duration (use seconds, or '90s', '10m', '1h')")
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration (use seconds, or '90s', '10m', '1h', '2d')")
    if seconds < 0 or (seconds == 0 and not zero_is_off):
        raise ValueError(
            "must be zero (off) or more" if zero_is_off else "must be greater than zero"
        )
    return seconds
