"""Alert-machine handlers for an alert nobody has been asked about yet: ``new`` (finding the
user, sending the DM, snoozes and suppression rules) and ``held`` (the storm guard)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from securitybot.domain.alert_states import (
    AlertState,
    Event,
    Outcome,
    Policy,
    Status,
    Transition,
)
from securitybot.domain.effects import EscalationReason, SendDM
from securitybot.domain.transition_outcomes import accepted, deadline, escalate, ignored

# --- new ------------------------------------------------------------------------------------


def on_user_resolved(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    # Stays `new` until the outbox reports dm_sent, so the answer clock starts when the user
    # can actually see the question. Duplicate lookups are deduplicated by the caller's outbox.
    return accepted(state, (SendDM(),), "user resolved: DM queued")


def on_dm_sent(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    respond_by = deadline(now, p.ack_timeout)
    new = replace(state, status=Status.AWAITING_ACK, respond_by=respond_by)
    return accepted(new, (), f"new -> awaiting_ack: DM sent, answer due by {respond_by}")


def on_user_unknown(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    return escalate(state, EscalationReason.UNKNOWN_USER, "no Slack user to ask")


def on_not_reachable(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    return escalate(state, EscalationReason.NOT_REACHABLE, "in no workspace the app is in")


def on_no_user(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    return escalate(state, EscalationReason.NO_USER, "the alert names no Slack user")


def on_user_exempt(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    return escalate(state, EscalationReason.USER_EXEMPT, "user is exempt from being asked")


def on_dm_failed(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    return escalate(state, EscalationReason.DM_FAILED, "could not DM the user")


def on_dm_deleted(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    # Deleting the question (or one's reply) is never an answer; whoever holds the session may
    # be hiding it from the real employee, so the team looks at once.
    return escalate(state, EscalationReason.DM_DELETED, "a message in the DM was deleted")


def on_snooze(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    if p.always_escalate:
        return ignored(state, event, "kind always escalates; snoozes do not apply")
    if not p.allow_snooze:
        return ignored(state, event, "kind does not allow snoozing")
    new = replace(state, status=Status.RESOLVED, outcome=Outcome.SUPPRESSED, respond_by=None)
    return accepted(new, (), "new -> resolved (suppressed): matched a snooze")


def on_suppression(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    # Checked again here (rules for such kinds are refused when made): an always_escalate
    # alert is never closed without a human looking.
    if p.always_escalate:
        return ignored(state, event, "kind always escalates; suppression rules do not apply")
    new = replace(state, status=Status.CLOSED, outcome=Outcome.SUPPRESSED, respond_by=None)
    return accepted(new, (), "new -> closed (suppressed): matched a suppression rule")


# --- held (the storm guard) ------------------------------------------------------------------


def on_storm_held(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    # Counted like any other DM (always_escalate kinds too): holding asks nobody anything, and
    # only a responder's decision moves it on.
    new = replace(state, status=Status.HELD, escalation_reason=EscalationReason.STORM)
    return accepted(new, (), "new -> held (storm): too many people for one detection")


def on_storm_released(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    # Back to `new` with the DM it was about to get; the answer clock starts when it is sent.
    new = replace(state, status=Status.NEW, escalation_reason=None)
    return accepted(new, (SendDM(),), f"held -> new: storm released by {event.actor}, DM queued")


def on_storm_discarded(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    # The team's decision (a responder's click), like benign: nobody is asked.
    new = replace(state, status=Status.CLOSED, outcome=Outcome.STORM_DISCARDED, respond_by=None)
    return accepted(new, (), f"{state.status} -> closed (storm_discarded): by {event.actor}")


def on_storm_escalated(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    return escalate(state, EscalationReason.STORM, f"storm escalated by {event.actor}")
