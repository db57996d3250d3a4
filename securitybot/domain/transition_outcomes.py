"""The building blocks every alert-machine handler returns: an ignored event, an accepted one,
an escalation to the team, and the deadlines that decide when waiting has gone on too long."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from securitybot.domain.alert_states import AlertState, Event, Status, Transition
from securitybot.domain.effects import (
    DM_TEXTS,
    Effect,
    EscalationReason,
    PostEscalation,
    UpdateDM,
)


def ignored(state: AlertState, event: Event, why: str | None = None) -> Transition:
    note = f"ignored: {event.type} while {state.status}"
    return Transition(state, (), False, f"{note} ({why})" if why else note)


def accepted(state: AlertState, effects: tuple[Effect, ...], note: str) -> Transition:
    return Transition(state, effects, True, note)


def deadline(now: datetime, seconds: float) -> datetime:
    return now.astimezone(UTC) + timedelta(seconds=seconds)


def deadline_passed(state: AlertState, now: datetime) -> bool:
    # A waiting alert without a deadline would wait forever; treat it as overdue.
    return state.respond_by is None or now >= state.respond_by


def escalate(state: AlertState, reason: EscalationReason, note: str, **changes: Any) -> Transition:
    """Hand the alert to the security team; the DM is updated only if one was sent."""
    effects: tuple[Effect, ...] = (PostEscalation(reason),)
    if state.status in (Status.AWAITING_ACK, Status.AWAITING_2FA) and reason in DM_TEXTS:
        effects = (UpdateDM(DM_TEXTS[reason]), *effects)
    new = replace(
        state, status=Status.ESCALATED, escalation_reason=reason, respond_by=None, **changes
    )
    return accepted(new, effects, f"{state.status} -> escalated ({reason}): {note}")
