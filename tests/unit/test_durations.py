"""One duration parser for every section: the same strings mean the same seconds in the core
config and in AER's per-org settings, and neither takes YAML's .inf or .nan."""

from __future__ import annotations

import math

import pytest

from securitybot.aer.decide import AerConfigError, _duration
from securitybot.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (300, 300.0),
        ("250ms", 0.25),
        ("90s", 90.0),
        ("10m", 600.0),
        ("1.5h", 5400.0),
        ("2d", 172800.0),
    ],
)
def test_core_and_aer_read_the_same_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert _duration(text, "aer.cooldown", allow_zero=False) == seconds


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, True, "soon", "-5m", "1w"])
def test_neither_takes_what_is_not_a_finite_duration(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)
    with pytest.raises(AerConfigError):
        _duration(bad, "aer.cooldown", allow_zero=True)


def test_zero_is_off_only_where_documented() -> None:
    assert parse_duration(0, zero_is_off=True) == 0
    with pytest.raises(ValueError, match="greater than zero"):
        parse_duration(0)
