"""The alert lifecycle's vocabulary: statuses, outcomes, events, the per-kind policy, and
the state and transition records that ``alert_machine.transition`` works on.

The enum strings are stored in the database and exposed by the API: a public contract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from securitybot.domain.effects import Effect, EscalationReason


class Status(StrEnum):
    """Stored in the database and exposed by the API, so the strings are a public contract."""

    NEW = "new"
    AWAITING_ACK = "awaiting_ack"
    AWAITING_2FA = "awaiting_2fa"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    TRIAGING = "triaging"
    CLOSED = "closed"
    # Stored, not sent: one detection was about to DM more people than the storm guard allows
    # (``escalation_reason`` says ``storm``) until a responder releases, discards or escalates.
    HELD = "held"


TERMINAL: frozenset[Status] = frozenset({Status.RESOLVED, Status.CLOSED})


class Outcome(StrEnum):
    CONFIRMED = "confirmed"  # the user said yes and approved a Duo push
    # matched a snooze the user had set up behind a Duo approval (resolved), or a suppression
    # rule the security team set up (closed: the team's decision, like benign)
    SUPPRESSED = "suppressed"
    BENIGN = "benign"  # the security team closed it as harmless
    COMPROMISED = "compromised"  # the security team confirmed an incident
    STORM_DISCARDED = "storm_discarded"  # a responder discarded the storm it was held in


class EventType(StrEnum):
    USER_RESOLVED = "user_resolved"  # Slack user looked up OK -> send the DM
    USER_UNKNOWN = "user_unknown"
    USER_NOT_REACHABLE = "user_not_reachable"  # in the org, in no workspace the app is in
    NO_USER = "no_user"  # the alert names no email or Slack id: nobody to look up
    USER_EXEMPT = "user_exempt"
    SNOOZE_MATCHED = "snooze_matched"
    DM_SENT = "dm_sent"
    DM_FAILED = "dm_failed"
    USER_CONFIRMED = "user_confirmed"
    USER_DENIED = "user_denied"
    DUO_APPROVED = "duo_approved"
    DUO_DENIED = "duo_denied"
    DUO_TIMEOUT = "duo_timeout"
    DUO_ERROR = "duo_error"
    DUO_NOT_ENROLLED = "duo_not_enrolled"
    DUO_FRAUD = "duo_fraud"  # the user marked the push as fraudulent in Duo Mobile
    DM_DELETED = "dm_deleted"  # the question or the user's reply was deleted from the DM
    WRONG_PERSON = "wrong_person"  # the user says the alert is about someone else
    SUPPRESSION_MATCHED = "suppression_matched"  # a team's suppression rule covers the alert
    DEADLINE_PASSED = "deadline_passed"
    CLAIMED = "claimed"
    RESOLVED_BENIGN = "resolved_benign"
    CONFIRMED_COMPROMISE = "confirmed_compromise"
    # The storm guard (issue 27): held instead of DMed, then a responder's decision on the storm.
    STORM_HELD = "storm_held"
    STORM_RELEASED = "storm_released"
    STORM_DISCARDED = "storm_discarded"
    STORM_ESCALATED = "storm_escalated"


ANSWER_CONFIRMED = "confirmed"
ANSWER_DENIED = "denied"
ANSWER_WRONG_PERSON = "wrong_person"


@dataclass(frozen=True)
class Policy:
    """Per-kind settings, frozen onto each alert at ingest so a config change mid-flight
    cannot alter the rules an alert is already being judged by."""

    ack_timeout: float  # seconds the user has to answer after the DM is sent
    duo_timeout: float  # seconds a Duo push may stay unanswered
    always_escalate: bool = False
    allow_snooze: bool = False

    def __post_init__(self) -> None:
        # A NaN or negative timeout would make deadline arithmetic fail (or never fire) far
        # from the bad config; refuse it where it is built.
        for name in ("ack_timeout", "duo_timeout"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Policy.{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class AlertState:
    status: Status
    outcome: Outcome | None = None
    escalation_reason: EscalationReason | None = None
    respond_by: datetime | None = None  # tz-aware UTC; set only while waiting for the user/Duo
    user_answer: str | None = None  # "confirmed" | "denied" | None
    user_comment: str | None = None
    duo_result: str | None = None  # EventType value of the Duo result recorded, e.g. "duo_approved"
    claimed_by: str | None = None
    # True only when a Duo approval arrived while we were waiting for it; a late approval on
    # an already-escalated alert is recorded in duo_result but does not set this, so nothing
    # downstream (e.g. snoozes) can treat an out-of-time approval as verification.
    duo_approved_seen: bool = False


@dataclass(frozen=True)
class Event:
    type: EventType
    actor: str = "system"  # slack user id or "system"
    comment: str | None = None  # user's free-text reason / triage note


@dataclass(frozen=True)
class Transition:
    state: AlertState
    effects: tuple[Effect, ...]
    # False when the event was ignored: state is then the input state and effects are empty.
    # True means the event was accepted; the state changed, or effects were asked for, or both
    # (dm_sent and snooze_matched change state without needing any effect).
    changed: bool
    note: str  # short reason for the audit log
