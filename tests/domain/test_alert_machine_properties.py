"""Invariants of the alert state machine over arbitrary event sequences.

The example tests pin down each rule; these make sure no *combination* of events, actors,
clocks and policies can talk the machine into a state the rules never meant to allow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from securitybot.domain import (
    TERMINAL,
    AlertState,
    EscalationReason,
    Event,
    EventType,
    Outcome,
    Policy,
    PostEscalation,
    ResetSessions,
    Status,
    Transition,
    transition,
)

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

# Accepted events that legitimately need no effect: the DM is already out (dm_sent) and a
# snoozed alert is meant to stay quiet (snooze_matched).
# Accepted without an effect: a suppression is counted and listed in the daily summary instead.
# Held by the storm guard, or discarded with its storm: nobody is to be asked anything.
SILENT_EVENTS = frozenset(
    {EventType.DM_SENT, EventType.SNOOZE_MATCHED, EventType.SUPPRESSION_MATCHED,
     EventType.STORM_HELD, EventType.STORM_DISCARDED}
)  # fmt: skip
STORM_DECISIONS = frozenset(
    {EventType.STORM_RELEASED, EventType.STORM_DISCARDED, EventType.STORM_ESCALATED}
)

policies = st.builds(
    Policy,
    ack_timeout=st.floats(min_value=0, max_value=3600, allow_nan=False),
    duo_timeout=st.floats(min_value=0, max_value=600, allow_nan=False),
    always_escalate=st.booleans(),
    allow_snooze=st.booleans(),
)

# Uniform event types almost never walk the whole happy path, so half the draws come from
# the events that move an alert forward.
event_types = st.one_of(
    st.sampled_from(EventType),
    st.sampled_from(
        [
            EventType.DM_SENT,
            EventType.USER_CONFIRMED,
            EventType.DUO_APPROVED,
            EventType.DEADLINE_PASSED,
            EventType.CLAIMED,
        ]
    ),
)
events = st.builds(
    Event,
    type=event_types,
    actor=st.sampled_from(["system", "UALICE", "UBOB"]),
    comment=st.none() | st.text(max_size=20),
)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=-7)), timezone(timedelta(hours=5, minutes=30))]
)
# Each step: the event, how long after the previous one it arrives, and the caller's zone.
steps = st.lists(
    st.tuples(events, st.floats(min_value=0, max_value=900, allow_nan=False), zones),
    max_size=40,
)


@dataclass(frozen=True)
class Step:
    before: AlertState
    event: Event
    now: datetime
    result: Transition


def run(policy: Policy, sequence: list[tuple[Event, float, timezone]]) -> Iterator[Step]:
    state, now = AlertState(Status.NEW), START
    for event, gap, zone in sequence:
        now = (now + timedelta(seconds=gap)).astimezone(zone)
        t = transition(state, event, now, policy)
        yield Step(state, event, now, t)
        state = t.state


def final(policy: Policy, sequence: list[tuple[Event, float, timezone]]) -> AlertState:
    state = AlertState(Status.NEW)
    for step in run(policy, sequence):
        state = step.result.state
    return state


@settings(max_examples=400)
@given(policy=policies, sequence=steps)
def test_invariants_hold_for_any_event_sequence(
    policy: Policy, sequence: list[tuple[Event, float, timezone]]
) -> None:
    approved_in_2fa = False
    for step in run(policy, sequence):
        before, event, t = step.before, step.event, step.result
        after = t.state
        if before.status is Status.AWAITING_2FA and event.type is EventType.DUO_APPROVED:
            approved_in_2fa = True

        # (1) status is always a Status
        assert isinstance(after.status, Status)

        # (2) once terminal, nothing changes
        if before.status in TERMINAL:
            assert after == before
            assert not t.changed

        # (3) no confirmed resolution without a Duo approval while awaiting_2fa
        if after.status is Status.RESOLVED and after.outcome is Outcome.CONFIRMED:
            assert approved_in_2fa
            assert after.duo_approved_seen
            assert after.user_answer == "confirmed"
        if after.status is Status.RESOLVED and before.status is not Status.RESOLVED:
            assert (before.status, event.type) in {
                (Status.AWAITING_2FA, EventType.DUO_APPROVED),
                (Status.NEW, EventType.SNOOZE_MATCHED),
            }
            assert after.outcome in {Outcome.CONFIRMED, Outcome.SUPPRESSED}
        if after.outcome is Outcome.SUPPRESSED and before.outcome is not Outcome.SUPPRESSED:
            # a snooze needs the kind's consent; a team's suppression rule only needs the kind
            # not to always escalate
            assert not policy.always_escalate
            assert event.type is EventType.SUPPRESSION_MATCHED or policy.allow_snooze

        # (4) escalated (and triaging, which follows it) always says why
        if after.status in {Status.ESCALATED, Status.TRIAGING}:
            assert isinstance(after.escalation_reason, EscalationReason)

        # (5) closed always carries the team's verdict, or a suppression rule closed it
        if after.status is Status.CLOSED and before.status is not Status.CLOSED:
            assert (
                after.outcome in {Outcome.BENIGN, Outcome.COMPROMISED}
                or (
                    event.type is EventType.SUPPRESSION_MATCHED
                    and after.outcome is Outcome.SUPPRESSED
                )
                or (
                    event.type is EventType.STORM_DISCARDED
                    and after.outcome is Outcome.STORM_DISCARDED
                )
            )

        # (5b) held only from new by the storm guard, and left only by a responder's decision
        if after.status is Status.HELD and before.status is not Status.HELD:
            assert (before.status, event.type) == (Status.NEW, EventType.STORM_HELD)
            assert after.escalation_reason is EscalationReason.STORM
        if before.status is Status.HELD and after.status is not Status.HELD:
            assert event.type in STORM_DECISIONS

        # (6) effects empty iff ignored, except the documented silent acceptances
        if not t.changed:
            assert t.effects == ()
            assert after is before
            assert t.note.startswith("ignored:")
        elif not t.effects:
            assert event.type in SILENT_EVENTS
            assert after != before

        # Effects match the change they announce.
        posted = [e for e in t.effects if isinstance(e, PostEscalation)]
        if after.status is Status.ESCALATED and before.status is not Status.ESCALATED:
            assert after.escalation_reason is not None
            assert posted == [PostEscalation(after.escalation_reason)]
        else:
            assert posted == []
        resets = any(isinstance(e, ResetSessions) for e in t.effects)
        newly_compromised = (
            after.outcome is Outcome.COMPROMISED and before.status is not after.status
        )
        assert resets == newly_compromised

        # A deadline exists exactly while we wait, and it is UTC.
        waiting = after.status in {Status.AWAITING_ACK, Status.AWAITING_2FA}
        assert (after.respond_by is not None) == waiting
        if after.respond_by is not None:
            assert after.respond_by.utcoffset() == timedelta(0)

        # duo_approved_seen only ever comes from an in-time approval.
        if after.duo_approved_seen:
            assert approved_in_2fa


@settings(max_examples=300)
@given(
    state=st.builds(
        AlertState,
        status=st.sampled_from(Status),
        outcome=st.none() | st.sampled_from(Outcome),
        escalation_reason=st.none() | st.sampled_from(EscalationReason),
        respond_by=st.none()
        | st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=zones
        ),
        user_answer=st.sampled_from([None, "confirmed", "denied"]),
        duo_result=st.none() | st.sampled_from([e.value for e in EventType]),
        claimed_by=st.sampled_from([None, "UALICE"]),
        duo_approved_seen=st.booleans(),
    ),
    event=events,
    policy=policies,
    now=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=zones
    ),
)
def test_any_single_event_on_any_state_is_total_and_well_formed(
    state: AlertState, event: Event, policy: Policy, now: datetime
) -> None:
    t = transition(state, event, now, policy)
    assert isinstance(t.state.status, Status)
    if state.status in TERMINAL or not t.changed:
        assert t.state is state
        assert t.effects == ()
        assert not t.changed
    else:
        assert t.effects or event.type in SILENT_EVENTS
    assert t.note


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (Status.RESOLVED, Outcome.CONFIRMED),
        (Status.RESOLVED, Outcome.SUPPRESSED),
        (Status.CLOSED, Outcome.BENIGN),
        (Status.CLOSED, Outcome.COMPROMISED),
        (Status.TRIAGING, None),
        (Status.AWAITING_2FA, None),
    ],
)
def test_generated_sequences_reach_every_status(status: Status, outcome: Outcome | None) -> None:
    """Guards the strategies: invariants checked only over `new` would prove nothing."""

    def reaches(args: tuple[Policy, list[tuple[Event, float, timezone]]]) -> bool:
        state = final(*args)
        return state.status is status and state.outcome is outcome

    # Shrinking would only make the witness prettier, at many seconds per status.
    quick = settings(max_examples=2000, phases=[Phase.generate], database=None)
    find(st.tuples(policies, steps), reaches, settings=quick)
