"""The storm guard's part of the alert machine: ``held`` asks nobody anything, and only a
responder's decision (release, discard, escalate) moves a held alert on."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from securitybot.domain import (
    TERMINAL,
    AlertState,
    EscalationReason,
    Event,
    EventType,
    Outcome,
    Policy,
    PostEscalation,
    SendDM,
    Status,
    transition,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
POLICY = Policy(ack_timeout=600.0, duo_timeout=60.0)
ALWAYS = Policy(ack_timeout=600.0, duo_timeout=60.0, always_escalate=True)
HELD = AlertState(Status.HELD, escalation_reason=EscalationReason.STORM)
STORM_EVENTS = (EventType.STORM_RELEASED, EventType.STORM_DISCARDED, EventType.STORM_ESCALATED)


def apply(state: AlertState, event: EventType, policy: Policy = POLICY) -> object:
    return transition(state, Event(event, actor="ULEAD"), NOW, policy)


@pytest.mark.parametrize("policy", [POLICY, ALWAYS])
def test_a_new_alert_is_held_with_reason_storm_and_nothing_sent(policy: Policy) -> None:
    t = transition(AlertState(Status.NEW), Event(EventType.STORM_HELD), NOW, policy)
    assert t.changed and t.effects == ()
    assert (t.state.status, t.state.escalation_reason) == (Status.HELD, EscalationReason.STORM)


def test_release_returns_it_to_new_and_asks_for_the_dm() -> None:
    t = transition(HELD, Event(EventType.STORM_RELEASED, actor="ULEAD"), NOW, POLICY)
    assert (t.state.status, t.state.escalation_reason, t.effects) == (Status.NEW, None, (SendDM(),))
    # and from there the normal path: DM sent, the answer clock starts
    sent = transition(t.state, Event(EventType.DM_SENT), NOW, POLICY)
    assert sent.state.status is Status.AWAITING_ACK


def test_discard_closes_as_storm_discarded_without_effects() -> None:
    t = transition(HELD, Event(EventType.STORM_DISCARDED, actor="ULEAD"), NOW, POLICY)
    assert (t.state.status, t.state.outcome, t.effects) == (
        Status.CLOSED, Outcome.STORM_DISCARDED, ()
    )  # fmt: skip
    assert t.state.status in TERMINAL


@pytest.mark.parametrize("policy", [POLICY, ALWAYS])
def test_escalate_all_escalates_with_reason_storm(policy: Policy) -> None:
    t = transition(HELD, Event(EventType.STORM_ESCALATED, actor="ULEAD"), NOW, policy)
    assert (t.state.status, t.state.escalation_reason) == (
        Status.ESCALATED, EscalationReason.STORM
    )  # fmt: skip
    assert t.effects == (PostEscalation(EscalationReason.STORM),)  # no DM to update


@pytest.mark.parametrize("event", [e for e in EventType if e not in STORM_EVENTS])
def test_nothing_but_a_decision_moves_a_held_alert(event: EventType) -> None:
    t = transition(HELD, Event(event, actor="UPERSON0"), NOW, POLICY)
    assert not t.changed and t.state == HELD and t.effects == ()


@pytest.mark.parametrize("status", [Status.AWAITING_ACK, Status.ESCALATED, Status.CLOSED])
def test_storm_events_do_not_touch_alerts_outside_a_storm(status: Status) -> None:
    state = AlertState(status)
    for event in (EventType.STORM_HELD, EventType.STORM_RELEASED, *STORM_EVENTS):
        assert not transition(state, Event(event), NOW, POLICY).changed
