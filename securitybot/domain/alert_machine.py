"""The alert lifecycle as a pure function: ``transition(state, event, now, policy)``.

Everything that decides *what happens next* to an alert lives here, with no I/O, so the rules
that keep Securitybot fail-closed can be read in one place and tested exhaustively. The caller
loads the state, applies the event, and in one transaction stores the new state, an audit row
(``Transition.note``) and outbox rows for ``Transition.effects``.

Security posture:

* ``resolved`` is reachable only through a Duo approval (outcome ``confirmed``) or a snooze
  (outcome ``suppressed``); ``closed`` only by the team's decision (triage, or a suppression
  rule a responder made); no other path lets an alert go quiet without a human looking.
* Any event that does not fit the current state is ignored rather than guessed at, and
  terminal alerts (``resolved``, ``closed``) never change again.
* The machine does not know who the alert's user is: the caller must check that
  ``user_confirmed``/``user_denied`` come from that user before building the event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from securitybot.domain.alert_states import (
    ANSWER_CONFIRMED,
    ANSWER_DENIED,
    ANSWER_WRONG_PERSON,
    TERMINAL,
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
    DM_TEXTS,
    Effect,
    EscalationReason,
    PostEscalation,
    ResetSessions,
    SendDM,
    StartDuoPush,
    UpdateDM,
    UpdateEscalation,
)

__all__ = [
    "CONFIRMED_DM_TEXT",
    "DM_TEXTS",
    "TERMINAL",
    "AlertState",
    "Effect",
    "EscalationReason",
    "Event",
    "EventType",
    "Outcome",
    "Policy",
    "PostEscalation",
    "ResetSessions",
    "SendDM",
    "StartDuoPush",
    "Status",
    "Transition",
    "UpdateDM",
    "UpdateEscalation",
    "transition",
]

_DUO_FAILURES: Mapping[EventType, EscalationReason] = MappingProxyType(
    {
        EventType.DUO_DENIED: EscalationReason.DUO_DENIED,
        EventType.DUO_TIMEOUT: EscalationReason.DUO_TIMEOUT,
        EventType.DUO_ERROR: EscalationReason.DUO_ERROR,
        EventType.DUO_NOT_ENROLLED: EscalationReason.DUO_NOT_ENROLLED,
        EventType.DUO_FRAUD: EscalationReason.DUO_FRAUD,
    }
)
_DUO_EVENTS: frozenset[EventType] = frozenset({EventType.DUO_APPROVED, *_DUO_FAILURES})

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


_Handler = Callable[[AlertState, Event, datetime, Policy], Transition]


def transition(state: AlertState, event: Event, now: datetime, policy: Policy) -> Transition:
    """Apply ``event`` to ``state`` at ``now`` under ``policy``.

    Accepted events (see the handler table at the bottom of this module):

    * ``new``: ``user_resolved`` asks for the DM (state unchanged); ``dm_sent`` starts the
      answer clock; ``no_user``/``user_unknown``/``user_exempt``/``dm_failed`` escalate;
      ``snooze_matched`` resolves as suppressed when the policy allows snoozing and does not
      always escalate; ``suppression_matched`` closes as suppressed unless the kind always
      escalates.
    * ``awaiting_ack``: ``user_confirmed`` starts a Duo push; ``user_denied`` escalates
      (``not_me``), ``wrong_person`` escalates (``wrong_person``), also while waiting
      for Duo; ``deadline_passed`` escalates (``no_response``) once ``now >= respond_by``;
      ``dm_failed`` escalates.
    * ``awaiting_2fa``: ``duo_approved`` resolves (or escalates with ``always_escalate``);
      other Duo results escalate with the matching reason; ``deadline_passed`` escalates with
      ``duo_timeout``; ``user_denied`` escalates with ``not_me`` (changing one's mind towards
      "not me" must never be lost, whatever the push then does). ``duo_fraud`` escalates with
      its own reason; ``dm_deleted`` escalates while waiting for the user or Duo.
    * ``held`` (the storm guard): ``storm_held`` moves ``new`` there with reason ``storm``;
      ``storm_released`` returns it to ``new`` and asks for the DM; ``storm_discarded``
      closes it (outcome ``storm_discarded``); ``storm_escalated`` escalates (``storm``).
      The last two also apply to ``new`` (an alert grouped under a held one follows it).
    * ``escalated``/``triaging``: ``claimed`` (re)assigns, ``resolved_benign`` and
      ``confirmed_compromise`` close. Late answers are recorded for the timeline without
      touching the status, via an ``UpdateEscalation`` effect: the first Duo result of a push
      that was still pending when we escalated, and a "not me" from a user who was asked.
      A late "yes, that was me" is ignored: it was never verified with Duo, and showing it
      to the team would lend it weight it has not earned.

    Answers are judged by event order, not by the clock: a ``user_confirmed`` processed
    before ``deadline_passed`` is accepted even if ``now`` is past ``respond_by``, because
    the Duo push that follows is the real gate, not the timer.

    Raises ``ValueError`` for a naive ``now``: comparing it to stored UTC deadlines would be
    silently wrong by the host's UTC offset.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if state.status in TERMINAL:
        return _ignored(state, event, f"{state.status} is terminal")
    handler = _HANDLERS.get((state.status, event.type))
    if handler is None:
        return _ignored(state, event)
    return handler(state, event, now, policy)


# --- helpers ---------------------------------------------------------------------------------


def _ignored(state: AlertState, event: Event, why: str | None = None) -> Transition:
    note = f"ignored: {event.type} while {state.status}"
    return Transition(state, (), False, f"{note} ({why})" if why else note)


def _accepted(state: AlertState, effects: tuple[Effect, ...], note: str) -> Transition:
    return Transition(state, effects, True, note)


def _deadline(now: datetime, seconds: float) -> datetime:
    return now.astimezone(UTC) + timedelta(seconds=seconds)


def _deadline_passed(state: AlertState, now: datetime) -> bool:
    # A waiting alert without a deadline would wait forever; treat it as overdue.
    return state.respond_by is None or now >= state.respond_by


def _escalate(state: AlertState, reason: EscalationReason, note: str, **changes: Any) -> Transition:
    """Hand the alert to the security team; the DM is updated only if one was sent."""
    effects: tuple[Effect, ...] = (PostEscalation(reason),)
    if state.status in (Status.AWAITING_ACK, Status.AWAITING_2FA) and reason in DM_TEXTS:
        effects = (UpdateDM(DM_TEXTS[reason]), *effects)
    new = replace(
        state, status=Status.ESCALATED, escalation_reason=reason, respond_by=None, **changes
    )
    return _accepted(new, effects, f"{state.status} -> escalated ({reason}): {note}")


# --- new ------------------------------------------------------------------------------------


def _on_user_resolved(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    # Stays `new` until the outbox reports dm_sent, so the answer clock starts when the user
    # can actually see the question. Duplicate lookups are deduplicated by the caller's outbox.
    return _accepted(state, (SendDM(),), "user resolved: DM queued")


def _on_dm_sent(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    respond_by = _deadline(now, p.ack_timeout)
    new = replace(state, status=Status.AWAITING_ACK, respond_by=respond_by)
    return _accepted(new, (), f"new -> awaiting_ack: DM sent, answer due by {respond_by}")


def _on_user_unknown(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    return _escalate(state, EscalationReason.UNKNOWN_USER, "no Slack user to ask")


def _on_not_reachable(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    return _escalate(state, EscalationReason.NOT_REACHABLE, "in no workspace the app is in")


def _on_no_user(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    return _escalate(state, EscalationReason.NO_USER, "the alert names no Slack user")


def _on_user_exempt(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    return _escalate(state, EscalationReason.USER_EXEMPT, "user is exempt from being asked")


def _on_dm_failed(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    return _escalate(state, EscalationReason.DM_FAILED, "could not DM the user")


def _on_dm_deleted(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    # Deleting the question (or one's reply) is never an answer; whoever holds the session may
    # be hiding it from the real employee, so the team looks at once.
    return _escalate(state, EscalationReason.DM_DELETED, "a message in the DM was deleted")


def _on_snooze(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    if p.always_escalate:
        return _ignored(state, event, "kind always escalates; snoozes do not apply")
    if not p.allow_snooze:
        return _ignored(state, event, "kind does not allow snoozing")
    new = replace(state, status=Status.RESOLVED, outcome=Outcome.SUPPRESSED, respond_by=None)
    return _accepted(new, (), "new -> resolved (suppressed): matched a snooze")


def _on_suppression(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    # Checked again here (rules for such kinds are refused when made): an always_escalate
    # alert is never closed without a human looking.
    if p.always_escalate:
        return _ignored(state, event, "kind always escalates; suppression rules do not apply")
    new = replace(state, status=Status.CLOSED, outcome=Outcome.SUPPRESSED, respond_by=None)
    return _accepted(new, (), "new -> closed (suppressed): matched a suppression rule")


# --- held (the storm guard) ------------------------------------------------------------------


def _on_storm_held(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    # Counted like any other DM (always_escalate kinds too): holding asks nobody anything, and
    # only a responder's decision moves it on.
    new = replace(state, status=Status.HELD, escalation_reason=EscalationReason.STORM)
    return _accepted(new, (), "new -> held (storm): too many people for one detection")


def _on_storm_released(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    # Back to `new` with the DM it was about to get; the answer clock starts when it is sent.
    new = replace(state, status=Status.NEW, escalation_reason=None)
    return _accepted(new, (SendDM(),), f"held -> new: storm released by {event.actor}, DM queued")


def _on_storm_discarded(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    # The team's decision (a responder's click), like benign: nobody is asked.
    new = replace(state, status=Status.CLOSED, outcome=Outcome.STORM_DISCARDED, respond_by=None)
    return _accepted(new, (), f"{state.status} -> closed (storm_discarded): by {event.actor}")


def _on_storm_escalated(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    return _escalate(state, EscalationReason.STORM, f"storm escalated by {event.actor}")


# --- awaiting_ack / awaiting_2fa -------------------------------------------------------------


def _on_user_confirmed(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    new = replace(
        state,
        status=Status.AWAITING_2FA,
        user_answer=ANSWER_CONFIRMED,
        user_comment=event.comment,
        respond_by=_deadline(now, p.duo_timeout),
    )
    return _accepted(new, (StartDuoPush(),), "awaiting_ack -> awaiting_2fa: user said yes")


def _on_user_denied(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    # not_me wins over always_escalate: it tells the team far more.
    return _escalate(
        state,
        EscalationReason.NOT_ME,
        "user said it was not them",
        user_answer=ANSWER_DENIED,
        user_comment=event.comment,
    )


def _on_wrong_person(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    return _escalate(
        state,
        EscalationReason.WRONG_PERSON,
        "user said the alert is about someone else",
        user_answer=ANSWER_WRONG_PERSON,
        user_comment=event.comment,
    )


def _on_ack_deadline(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    if not _deadline_passed(state, now):
        return _ignored(state, event, f"deadline not reached: due {state.respond_by}")
    return _escalate(state, EscalationReason.NO_RESPONSE, "no answer in time")


def _on_duo_approved(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    result = event.type.value
    if p.always_escalate:
        return _escalate(
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
    return _accepted(
        new, (UpdateDM(CONFIRMED_DM_TEXT),), "awaiting_2fa -> resolved (confirmed): push approved"
    )


def _on_duo_failure(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    reason = _DUO_FAILURES[event.type]
    return _escalate(state, reason, f"Duo: {event.type}", duo_result=event.type.value)


def _on_duo_deadline(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    if not _deadline_passed(state, now):
        return _ignored(state, event, f"deadline not reached: due {state.respond_by}")
    return _escalate(state, EscalationReason.DUO_TIMEOUT, "push not answered in time")


# --- escalated / triaging --------------------------------------------------------------------


def _on_claimed(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    if state.status is Status.TRIAGING and state.claimed_by == event.actor:
        return _ignored(state, event, f"already claimed by {event.actor}")
    new = replace(state, status=Status.TRIAGING, claimed_by=event.actor)
    return _accepted(new, (UpdateEscalation(),), f"{state.status} -> triaging: {event.actor}")


def _on_benign(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    new = replace(state, status=Status.CLOSED, outcome=Outcome.BENIGN)
    return _accepted(new, (UpdateEscalation(),), f"{state.status} -> closed (benign)")


def _on_compromise(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    new = replace(state, status=Status.CLOSED, outcome=Outcome.COMPROMISED)
    # Sessions first: containment matters more than the channel post being current.
    effects: tuple[Effect, ...] = (ResetSessions(), UpdateEscalation())
    return _accepted(new, effects, f"{state.status} -> closed (compromised): sessions reset")


def _on_late_duo(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    if state.user_answer != ANSWER_CONFIRMED:
        return _ignored(state, event, "no push was started for this answer")
    if state.duo_result is not None:
        # The first result is what the user actually did; later ones are retries or noise.
        return _ignored(state, event, f"push result already recorded: {state.duo_result}")
    new = replace(state, duo_result=event.type.value)
    return _accepted(new, (UpdateEscalation(),), f"late {event.type} recorded; status unchanged")


def _on_late_denial(state: AlertState, event: Event, now: datetime, p: Policy) -> Transition:
    if state.escalation_reason in _NEVER_ASKED:
        return _ignored(state, event, "the user was never asked")
    if state.user_answer == ANSWER_DENIED:
        return _ignored(state, event, "already recorded as denied")
    new = replace(state, user_answer=ANSWER_DENIED, user_comment=event.comment)
    return _accepted(new, (UpdateEscalation(),), "late user_denied recorded; status unchanged")


_E = EventType
_HANDLERS: Mapping[tuple[Status, EventType], _Handler] = MappingProxyType(
    {
        (Status.NEW, _E.USER_RESOLVED): _on_user_resolved,
        (Status.NEW, _E.DM_SENT): _on_dm_sent,
        (Status.NEW, _E.USER_UNKNOWN): _on_user_unknown,
        (Status.NEW, _E.USER_NOT_REACHABLE): _on_not_reachable,
        (Status.NEW, _E.NO_USER): _on_no_user,
        (Status.NEW, _E.USER_EXEMPT): _on_user_exempt,
        (Status.NEW, _E.DM_FAILED): _on_dm_failed,
        (Status.NEW, _E.SNOOZE_MATCHED): _on_snooze,
        (Status.NEW, _E.SUPPRESSION_MATCHED): _on_suppression,
        (Status.NEW, _E.STORM_HELD): _on_storm_held,
        (Status.HELD, _E.STORM_RELEASED): _on_storm_released,
        # From `new` too: an alert of the same person grouped under a held one follows it.
        **{(s, _E.STORM_DISCARDED): _on_storm_discarded for s in (Status.HELD, Status.NEW)},
        **{(s, _E.STORM_ESCALATED): _on_storm_escalated for s in (Status.HELD, Status.NEW)},
        (Status.AWAITING_ACK, _E.WRONG_PERSON): _on_wrong_person,
        (Status.AWAITING_2FA, _E.WRONG_PERSON): _on_wrong_person,
        (Status.AWAITING_ACK, _E.DM_FAILED): _on_dm_failed,
        (Status.AWAITING_ACK, _E.USER_CONFIRMED): _on_user_confirmed,
        (Status.AWAITING_ACK, _E.USER_DENIED): _on_user_denied,
        (Status.AWAITING_ACK, _E.DEADLINE_PASSED): _on_ack_deadline,
        (Status.AWAITING_ACK, _E.DM_DELETED): _on_dm_deleted,
        (Status.AWAITING_2FA, _E.DM_DELETED): _on_dm_deleted,
        (Status.AWAITING_2FA, _E.DUO_APPROVED): _on_duo_approved,
        **{(Status.AWAITING_2FA, e): _on_duo_failure for e in _DUO_FAILURES},
        (Status.AWAITING_2FA, _E.DEADLINE_PASSED): _on_duo_deadline,
        (Status.AWAITING_2FA, _E.USER_DENIED): _on_user_denied,
        (Status.ESCALATED, _E.CLAIMED): _on_claimed,
        (Status.TRIAGING, _E.CLAIMED): _on_claimed,
        **{(s, _E.RESOLVED_BENIGN): _on_benign for s in (Status.ESCALATED, Status.TRIAGING)},
        **{
            (s, _E.CONFIRMED_COMPROMISE): _on_compromise
            for s in (Status.ESCALATED, Status.TRIAGING)
        },
        **{(s, e): _on_late_duo for s in (Status.ESCALATED, Status.TRIAGING) for e in _DUO_EVENTS},
        **{(s, _E.USER_DENIED): _on_late_denial for s in (Status.ESCALATED, Status.TRIAGING)},
    }
)
