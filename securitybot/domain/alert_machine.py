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
from datetime import datetime
from types import MappingProxyType

from securitybot.domain.alert_answers import (
    DUO_FAILURES,
    on_ack_deadline,
    on_duo_approved,
    on_duo_deadline,
    on_duo_failure,
    on_user_confirmed,
    on_user_denied,
    on_wrong_person,
)
from securitybot.domain.alert_intake import (
    on_dm_deleted,
    on_dm_failed,
    on_dm_sent,
    on_no_user,
    on_not_reachable,
    on_snooze,
    on_storm_discarded,
    on_storm_escalated,
    on_storm_held,
    on_storm_released,
    on_suppression,
    on_user_exempt,
    on_user_resolved,
    on_user_unknown,
)
from securitybot.domain.alert_states import (
    TERMINAL,
    AlertState,
    Event,
    EventType,
    Outcome,
    Policy,
    Status,
    Transition,
)
from securitybot.domain.alert_triage import (
    on_benign,
    on_claimed,
    on_compromise,
    on_late_denial,
    on_late_duo,
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
from securitybot.domain.transition_outcomes import ignored

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

_DUO_EVENTS: frozenset[EventType] = frozenset({EventType.DUO_APPROVED, *DUO_FAILURES})


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
        return ignored(state, event, f"{state.status} is terminal")
    handler = _HANDLERS.get((state.status, event.type))
    if handler is None:
        return ignored(state, event)
    return handler(state, event, now, policy)


_E = EventType
_HANDLERS: Mapping[tuple[Status, EventType], _Handler] = MappingProxyType(
    {
        (Status.NEW, _E.USER_RESOLVED): on_user_resolved,
        (Status.NEW, _E.DM_SENT): on_dm_sent,
        (Status.NEW, _E.USER_UNKNOWN): on_user_unknown,
        (Status.NEW, _E.USER_NOT_REACHABLE): on_not_reachable,
        (Status.NEW, _E.NO_USER): on_no_user,
        (Status.NEW, _E.USER_EXEMPT): on_user_exempt,
        (Status.NEW, _E.DM_FAILED): on_dm_failed,
        (Status.NEW, _E.SNOOZE_MATCHED): on_snooze,
        (Status.NEW, _E.SUPPRESSION_MATCHED): on_suppression,
        (Status.NEW, _E.STORM_HELD): on_storm_held,
        (Status.HELD, _E.STORM_RELEASED): on_storm_released,
        # From `new` too: an alert of the same person grouped under a held one follows it.
        **{(s, _E.STORM_DISCARDED): on_storm_discarded for s in (Status.HELD, Status.NEW)},
        **{(s, _E.STORM_ESCALATED): on_storm_escalated for s in (Status.HELD, Status.NEW)},
        (Status.AWAITING_ACK, _E.WRONG_PERSON): on_wrong_person,
        (Status.AWAITING_2FA, _E.WRONG_PERSON): on_wrong_person,
        (Status.AWAITING_ACK, _E.DM_FAILED): on_dm_failed,
        (Status.AWAITING_ACK, _E.USER_CONFIRMED): on_user_confirmed,
        (Status.AWAITING_ACK, _E.USER_DENIED): on_user_denied,
        (Status.AWAITING_ACK, _E.DEADLINE_PASSED): on_ack_deadline,
        (Status.AWAITING_ACK, _E.DM_DELETED): on_dm_deleted,
        (Status.AWAITING_2FA, _E.DM_DELETED): on_dm_deleted,
        (Status.AWAITING_2FA, _E.DUO_APPROVED): on_duo_approved,
        **{(Status.AWAITING_2FA, e): on_duo_failure for e in DUO_FAILURES},
        (Status.AWAITING_2FA, _E.DEADLINE_PASSED): on_duo_deadline,
        (Status.AWAITING_2FA, _E.USER_DENIED): on_user_denied,
        (Status.ESCALATED, _E.CLAIMED): on_claimed,
        (Status.TRIAGING, _E.CLAIMED): on_claimed,
        **{(s, _E.RESOLVED_BENIGN): on_benign for s in (Status.ESCALATED, Status.TRIAGING)},
        **{
            (s, _E.CONFIRMED_COMPROMISE): on_compromise for s in (Status.ESCALATED, Status.TRIAGING)
        },
        **{(s, e): on_late_duo for s in (Status.ESCALATED, Status.TRIAGING) for e in _DUO_EVENTS},
        **{(s, _E.USER_DENIED): on_late_denial for s in (Status.ESCALATED, Status.TRIAGING)},
    }
)
