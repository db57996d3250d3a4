"""Alert-machine handlers once the security team has the alert (``escalated``/``triaging``):
claiming, closing, and recording late answers without touching the status."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from securitybot.domain.alert_states import (
    ANSWER_CONFIRMED,
    ANSWER_DENIED,
    AlertState,
    Event,
    Outcome,
    Policy,
    Status,
    Transition,
)
from securitybot.domain.effects import (
    Effect,
    EscalationReason,
    ResetSessions,
    UpdateEscalation,
)
from securitybot.domain.transition_outcomes import accepted, ignored

# Escalations that happened before the user could have seen a DM: a later "not me" click
# cannot belong to this alert, so it is not recorded.
_NEVER_ASKED: frozenset[EscalationReason] = frozenset(
    {
        EscalationReason.NO_USER,
        EscalationReason.UNKNOWN_USER,
        EscalationReason.NOT_REACHABLE,
        EscalationReason.USER_EXEMPT,
        EscalationReason.DM_FAILED,
    }
)


def on_claimed(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    if state.status is Status.TRIAGING and state.claimed_by == event.actor:
        return ignored(state, event, f"already claimed by {event.actor}")
    new = replace(state, status=Status.TRIAGING, claimed_by=event.actor)
    return accepted(new, (UpdateEscalation(),), f"{state.status} -> triaging: {event.actor}")


def on_benign(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    new = replace(state, status=Status.CLOSED, outcome=Outcome.BENIGN)
    return accepted(new, (UpdateEscalation(),), f"{state.status} -> closed (benign)")


def on_compromise(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    new = replace(state, status=Status.CLOSED, outcome=Outcome.COMPROMISED)
    # Sessions first: containment matters more than the channel post being current.
    effects: tuple[Effect, ...] = (ResetSessions(), UpdateEscalation())
    return accepted(new, effects, f"{state.status} -> closed (compromised): sessions reset")


def on_late_duo(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    if state.user_answer != ANSWER_CONFIRMED:
        return ignored(state, event, "no push was started for this answer")
    if state.duo_result is not None:
        # The first result is what the user actually did; later ones are retries or noise.
        return ignored(state, event, f"push result already recorded: {state.duo_result}")
    new = replace(state, duo_result=event.type.value)
    return accepted(new, (UpdateEscalation(),), f"late {event.type} recorded; status unchanged")


def on_late_denial(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    if state.escalation_reason in _NEVER_ASKED:
        return ignored(state, event, "the user was never asked")
    if state.user_answer == ANSWER_DENIED:
        return ignored(state, event, "already recorded as denied")
    new = replace(state, user_answer=ANSWER_DENIED, user_comment=event.comment)
    return accepted(new, (UpdateEscalation(),), "late user_denied recorded; status unchanged")
