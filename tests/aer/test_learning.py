"""History trains the engine without raising anything; the present is judged on top of it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from securitybot.config import AerConfig
from tests.aer.test_detect import T0, burst, engine, ev, run, types


def test_learned_events_raise_nothing_but_update_profiles_and_counters() -> None:
    eng = engine()
    history = [
        *burst("T0A", 400, start=T0),
        ev(ts=T0 + timedelta(minutes=8), asn=3320, country="DE", session="S2", ip="198.51.100.7"),
    ]
    assert [a for e in history for a in eng.observe(e, learn=True)] == []
    # The profile learned DE and AS3320: a live event from there is nothing new.
    assert run(eng, [ev(ts=T0 + timedelta(minutes=20), asn=3320, country="DE", session="S2")]) == []
    drained = eng.drain_counters()
    assert sum(n for (_, _, action, _), n in drained.items() if action == "file_download") == 400


def test_a_live_event_in_an_hour_filled_by_history_is_judged_on_the_whole_hour() -> None:
    eng = engine()
    for e in burst("T0A", 300, start=T0):
        assert eng.observe(e, learn=True) == []
    found = eng.observe(ev(action="file_download", ts=T0 + timedelta(minutes=30)))
    assert types(found) == ["excessive_downloads"] and found[0].observed == 301


def test_learning_does_not_mute_a_later_live_anomaly_of_the_same_kind() -> None:
    eng = engine()
    tor = ev(ip="198.51.100.7", session="S9")
    assert eng.observe(tor, learn=True) == []
    assert types(eng.observe(tor)) == ["tor"]


def test_a_live_window_of_zero_would_make_everything_history_and_is_refused() -> None:
    with pytest.raises(ValidationError, match="live_window"):
        AerConfig.model_validate({"live_window": "0s"})
    assert AerConfig.model_validate({"live_window": "10m"}).live_window == 600
