"""Alert-machine handlers while waiting on the user: ``awaiting_ack`` (their answer to the DM)
and ``awaiting_2fa`` (the Duo push that verifies a "yes, that was me")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType

from securitybot.domain.alert_states import (
    ANSWER_CONFIRMED,
    ANSWER_DENIED,
    ANSWER_WRONG_PERSON,
    AlertState,
    Event,
    EventType,
    Outcome,
    Policy,
    Status,
    Transition,
)
from securitybot.domain.effects import (
    CONFIRMED_DM_TEXT,
    EscalationReason,
    StartDuoPush,
    UpdateDM,
)
from securitybot.domain.transition_outcomes import (
    accepted,
    deadline,
    deadline_passed,
    escalate,
    ignored,
)

DUO_FAILURES: Mapping[EventType, EscalationReason] = MappingProxyType(
    {
        EventType.DUO_DENIED: EscalationReason.DUO_DENIED,
        EventType.DUO_TIMEOUT: EscalationReason.DUO_TIMEOUT,
        EventType.DUO_ERROR: EscalationReason.DUO_ERROR,
        EventType.DUO_NOT_ENROLLED: EscalationReason.DUO_NOT_ENROLLED,
        EventType.DUO_FRAUD: EscalationReason.DUO_FRAUD,
    }
)


def on_user_confirmed(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    new = replace(
        state,
        status=Status.AWAITING_2FA,
        user_answer=ANSWER_CONFIRMED,
        user_comment=event.comment,
        respond_by=deadline(now, p.duo_timeout),
    )
    return accepted(new, (StartDuoPush(),), "awaiting_ack -> awaiting_2fa: user said yes")


def on_user_denied(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    # not_me wins over always_escalate: it tells the team far more.
    return escalate(
        state,
        EscalationReason.NOT_ME,
        "user said it was not them",
        user_answer=ANSWER_DENIED,
        user_comment=event.comment,
    )


def on_wrong_person(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    return escalate(
        state,
        EscalationReason.WRONG_PERSON,
        "user said the alert is about someone else",
        user_answer=ANSWER_WRONG_PERSON,
        user_comment=event.comment,
    )


def on_ack_deadline(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    if not deadline_passed(state, now):
        return ignored(state, event, f"deadline not reached: due {state.respond_by}")
    return escalate(state, EscalationReason.NO_RESPONSE, "no answer in time")


def on_duo_approved(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    result = event.type.value
    if p.always_escalate:
        return escalate(
            state,
            EscalationReason.ALWAYS_ESCALATE,
            "push approved; kind always escalates",
            duo_result=result,
            duo_approved_seen=True,
        )
    new = replace(
        state,
        status=Status.RESOLVED,
        outcome=Outcome.CONFIRMED,
        respond_by=None,
        duo_result=result,
        duo_approved_seen=True,
    )
    return accepted(
        new, (UpdateDM(CONFIRMED_DM_TEXT),), "awaiting_2fa -> resolved (confirmed): push approved"
    )


def on_duo_failure(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    reason = DUO_FAILURES[event.type]
    return escalate(state, reason, f"Duo: {event.type}", duo_result=event.type.value)


def on_duo_deadline(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    if not deadline_passed(state, now):
        return ignored(state, event, f"deadline not reached: due {state.respond_by}")
    return escalate(state, EscalationReason.DUO_TIMEOUT, "push not answered in time")
