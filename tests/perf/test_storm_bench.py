"""bench/storm.py at a tiny size: both scenarios run end to end against a real `serve` and the
rate-limited fake Slack, and their figures are the ones the bench prints."""

from __future__ import annotations

import pytest

from bench.storm import _print_misfire, _print_new, run_misfire, run_new
from securitybot.config import StormConfig

SCALE = 60.0  # a Slack-minute per second


def test_new_people_are_all_reached_and_measured(capsys: pytest.CaptureFixture[str]) -> None:
    r = run_new("sqlite", 20, 0, SCALE, timeout=20)
    assert r["reached"] == 20 and r["errors"] == 0
    # Today's call pattern (users.lookupByEmail + conversations.open + chat.postMessage) or
    # the directory one (users.list, then a post to each user id): a DM each, either way.
    assert r["calls"]["chat.postMessage"] >= 20
    assert r["calls"].get("users.list", 0) or r["calls"]["users.lookupByEmail"] >= 20
    assert 0 < r["p50"] <= r["p90"] <= r["minutes"]
    assert sum(r["per_minute"]) == 20
    _print_new("sqlite", r, SCALE)
    out = capsys.readouterr().out
    assert "20/20 people DMed" in out and "goal within 1.2x" in out and "scale x60" in out


def test_a_misfire_is_held_after_max_people(capsys: pytest.CaptureFixture[str]) -> None:
    people = StormConfig().max_people + 10
    r = run_misfire("sqlite", people, SCALE, timeout=20)
    assert r["errors"] == 0
    assert r["dms"] == r["max_people"] == StormConfig().max_people
    assert r["posts"] == 1
    assert r["statuses"].get("held") == 10 and not r["statuses"].get("new")
    _print_misfire("sqlite", r, SCALE)
    assert ": OK" in capsys.readouterr().out.replace("; OK", ": OK")
