"""One test per transition of the alert state machine, named for the behaviour it pins down."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from securitybot.domain import (
    CONFIRMED_DM_TEXT,
    DM_TEXTS,
    AlertState,
    EscalationReason,
    Event,
    EventType,
    Outcome,
    Policy,
    PostEscalation,
    ResetSessions,
    SendDM,
    StartDuoPush,
    Status,
    Transition,
    UpdateDM,
    UpdateEscalation,
    transition,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
POLICY = Policy(ack_timeout=600.0, duo_timeout=60.0)
ALWAYS = Policy(ack_timeout=600.0, duo_timeout=60.0, always_escalate=True)
SNOOZABLE = Policy(ack_timeout=600.0, duo_timeout=60.0, allow_snooze=True)

NEW = AlertState(Status.NEW)
AWAITING_ACK = AlertState(Status.AWAITING_ACK, respond_by=NOW + timedelta(seconds=600))
AWAITING_2FA = AlertState(
    Status.AWAITING_2FA,
    user_answer="confirmed",
    user_comment="deploying",
    respond_by=NOW + timedelta(seconds=60),
)
ESCALATED = AlertState(Status.ESCALATED, escalation_reason=EscalationReason.NO_RESPONSE)
TRIAGING = replace(ESCALATED, status=Status.TRIAGING, claimed_by="UALICE")

DUO_FAILURES = [
    (EventType.DUO_DENIED, EscalationReason.DUO_DENIED),
    (EventType.DUO_TIMEOUT, EscalationReason.DUO_TIMEOUT),
    (EventType.DUO_ERROR, EscalationReason.DUO_ERROR),
    (EventType.DUO_NOT_ENROLLED, EscalationReason.DUO_NOT_ENROLLED),
]


def apply(
    state: AlertState,
    event_type: EventType,
    *,
    actor: str = "system",
    comment: str | None = None,
    now: datetime = NOW,
    policy: Policy = POLICY,
) -> Transition:
    return transition(state, Event(event_type, actor=actor, comment=comment), now, policy)


def assert_ignored(t: Transition, state: AlertState) -> None:
    assert t.changed is False
    assert t.state == state
    assert t.effects == ()
    assert t.note.startswith("ignored:")


# --- new -------------------------------------------------------------------------------------


def test_resolved_user_queues_the_dm_and_stays_new() -> None:
    t = apply(NEW, EventType.USER_RESOLVED)
    assert t.changed
    assert t.state == NEW
    assert t.effects == (SendDM(),)


def test_sent_dm_starts_the_answer_clock() -> None:
    t = apply(NEW, EventType.DM_SENT)
    assert t.changed
    assert t.state.status is Status.AWAITING_ACK
    assert t.state.respond_by == NOW + timedelta(seconds=600)
    assert t.effects == ()


def test_answer_deadline_is_stored_in_utc_whatever_the_callers_zone() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=-7)))
    t = apply(NEW, EventType.DM_SENT, now=local)
    assert t.state.respond_by == NOW + timedelta(seconds=600)
    assert t.state.respond_by is not None
    assert t.state.respond_by.utcoffset() == timedelta(0)


def test_unknown_user_escalates_without_touching_a_dm() -> None:
    t = apply(NEW, EventType.USER_UNKNOWN)
    assert t.state.status is Status.ESCALATED
    assert t.state.escalation_reason is EscalationReason.UNKNOWN_USER
    assert t.effects == (PostEscalation(EscalationReason.UNKNOWN_USER),)


def test_an_alert_naming_nobody_escalates_as_no_user_and_ignores_a_late_denial() -> None:
    t = apply(NEW, EventType.NO_USER)
    assert t.state.status is Status.ESCALATED
    assert t.state.escalation_reason is EscalationReason.NO_USER
    assert t.effects == (PostEscalation(EscalationReason.NO_USER),)
    assert apply(t.state, EventType.USER_DENIED).state.user_answer is None  # nobody was asked


def test_exempt_user_escalates_with_user_exempt() -> None:
    t = apply(NEW, EventType.USER_EXEMPT)
    assert t.state.status is Status.ESCALATED
    assert t.state.escalation_reason is EscalationReason.USER_EXEMPT
    assert t.effects == (PostEscalation(EscalationReason.USER_EXEMPT),)


def test_failed_dm_escalates_with_dm_failed() -> None:
    t = apply(NEW, EventType.DM_FAILED)
    assert t.state.status is Status.ESCALATED
    assert t.state.escalation_reason is EscalationReason.DM_FAILED
    assert t.effects == (PostEscalation(EscalationReason.DM_FAILED),)


def test_failed_dm_while_awaiting_answer_escalates_and_clears_the_deadline() -> None:
    t = apply(AWAITING_ACK, EventType.DM_FAILED)
    assert t.state.status is Status.ESCALATED
    assert t.state.escalation_reason is EscalationReason.DM_FAILED
    assert t.state.respond_by is None
    assert t.effects == (PostEscalation(EscalationReason.DM_FAILED),)


def test_matched_snooze_resolves_as_suppressed_when_kind_allows_it() -> None:
    t = apply(NEW, EventType.SNOOZE_MATCHED, policy=SNOOZABLE)
    assert t.changed
    assert t.state.status is Status.RESOLVED
    assert t.state.outcome is Outcome.SUPPRESSED
    assert t.effects == ()


def test_matched_snooze_is_ignored_when_kind_does_not_allow_it() -> None:
    assert_ignored(apply(NEW, EventType.SNOOZE_MATCHED), NEW)


def test_matched_snooze_is_ignored_for_always_escalate_kinds() -> None:
    policy = replace(SNOOZABLE, always_escalate=True)
    t = apply(NEW, EventType.SNOOZE_MATCHED, policy=policy)
    assert_ignored(t, NEW)
    assert "always escalates" in t.note


# --- awaiting_ack ----------------------------------------------------------------------------


def test_confirmation_starts_a_duo_push_and_keeps_the_comment() -> None:
    t = apply(AWAITING_ACK, EventType.USER_CONFIRMED, actor="UBOB", comment="my deploy")
    assert t.state.status is Status.AWAITING_2FA
    assert t.state.user_answer == "confirmed"
    assert t.state.user_comment == "my deploy"
    assert t.state.respond_by == NOW + timedelta(seconds=60)
    assert t.effects == (StartDuoPush(),)


def test_confirmation_after_the_deadline_but_before_the_deadline_event_is_accepted() -> None:
    # Event order decides; the Duo push is the real gate, not the timer.
    t = apply(AWAITING_ACK, EventType.USER_CONFIRMED, now=NOW + timedelta(hours=1))
    assert t.state.status is Status.AWAITING_2FA


def test_denial_escalates_with_not_me() -> None:
    t = apply(AWAITING_ACK, EventType.USER_DENIED, comment="not me!")
    assert t.state.status is Status.ESCALATED
    assert t.state.escalation_reason is EscalationReason.NOT_ME
    assert t.state.user_answer == "denied"
    assert t.state.user_comment == "not me!"
    assert t.state.respond_by is None
    assert t.effects == (
        UpdateDM(DM_TEXTS[EscalationReason.NOT_ME]),
        PostEscalation(EscalationReason.NOT_ME),
    )


def test_denial_escalates_with_not_me_even_for_always_escalate_kinds() -> None:
    t = apply(AWAITING_ACK, EventType.USER_DENIED, policy=ALWAYS)
    assert t.state.escalation_reason is EscalationReason.NOT_ME


def test_missed_answer_deadline_escalates_with_no_response() -> None:
    t = apply(AWAITING_ACK, EventType.DEADLINE_PASSED, now=NOW + timedelta(seconds=600))
    assert t.state.status is Status.ESCALATED
    assert t.state.escalation_reason is EscalationReason.NO_RESPONSE
    assert t.state.user_answer is None
    assert t.effects == (
        UpdateDM(DM_TEXTS[EscalationReason.NO_RESPONSE]),
        PostEscalation(EscalationReason.NO_RESPONSE),
    )


def test_answer_deadline_event_before_the_deadline_is_ignored() -> None:
    t = apply(AWAITING_ACK, EventType.DEADLINE_PASSED, now=NOW + timedelta(seconds=599))
    assert_ignored(t, AWAITING_ACK)
    assert "deadline not reached" in t.note


def test_waiting_alert_without_a_deadline_escalates_on_deadline_event() -> None:
    # Fail closed: a malformed row must not wait forever.
    t = apply(AlertState(Status.AWAITING_ACK), EventType.DEADLINE_PASSED)
    assert t.state.escalation_reason is EscalationReason.NO_RESPONSE


def test_duo_approval_while_awaiting_answer_is_ignored() -> None:
    t = apply(AWAITING_ACK, EventType.DUO_APPROVED)
    assert_ignored(t, AWAITING_ACK)
    assert t.note == "ignored: duo_approved while awaiting_ack"


# --- awaiting_2fa ----------------------------------------------------------------------------


def test_duo_approval_resolves_as_confirmed() -> None:
    t = apply(AWAITING_2FA, EventType.DUO_APPROVED)
    assert t.state.status is Status.RESOLVED
    assert t.state.outcome is Outcome.CONFIRMED
    assert t.state.duo_result == "duo_approved"
    assert t.state.duo_approved_seen is True
    assert t.state.respond_by is None
    assert t.state.user_comment == "deploying"
    assert t.effects == (UpdateDM(CONFIRMED_DM_TEXT),)


def test_duo_approval_escalates_always_escalate_kinds() -> None:
    t = apply(AWAITING_2FA, EventType.DUO_APPROVED, policy=ALWAYS)
    assert t.state.status is Status.ESCALATED
    assert t.state.escalation_reason is EscalationReason.ALWAYS_ESCALATE
    assert t.state.outcome is None
    assert t.state.duo_approved_seen is True
    assert t.state.duo_result == "duo_approved"
    assert t.effects == (
        UpdateDM(DM_TEXTS[EscalationReason.ALWAYS_ESCALATE]),
        PostEscalation(EscalationReason.ALWAYS_ESCALATE),
    )


@pytest.mark.parametrize(("event_type", "reason"), DUO_FAILURES)
def test_duo_failure_escalates_with_its_own_reason(
    event_type: EventType, reason: EscalationReason
) -> None:
    t = apply(AWAITING_2FA, event_type)
    assert t.state.status is Status.ESCALATED
    assert t.state.escalation_reason is reason
    assert t.state.duo_result == event_type.value
    assert t.state.duo_approved_seen is False
    assert t.effects == (UpdateDM(DM_TEXTS[reason]), PostEscalation(reason))


def test_denied_push_escalates_with_duo_denied() -> None:
    t = apply(AWAITING_2FA, EventType.DUO_DENIED)
    assert t.state.escalation_reason is EscalationReason.DUO_DENIED


@pytest.mark.parametrize(("event_type", "reason"), DUO_FAILURES)
def test_duo_failure_keeps_its_own_reason_for_always_escalate_kinds(
    event_type: EventType, reason: EscalationReason
) -> None:
    assert apply(AWAITING_2FA, event_type, policy=ALWAYS).state.escalation_reason is reason


def test_missed_duo_deadline_escalates_with_duo_timeout() -> None:
    t = apply(AWAITING_2FA, EventType.DEADLINE_PASSED, now=NOW + timedelta(seconds=61))
    assert t.state.status is Status.ESCALATED
    assert t.state.escalation_reason is EscalationReason.DUO_TIMEOUT
    assert t.state.duo_result is None  # no Duo result arrived; the timer fired
    assert t.effects == (
        UpdateDM(DM_TEXTS[EscalationReason.DUO_TIMEOUT]),
        PostEscalation(EscalationReason.DUO_TIMEOUT),
    )


def test_duo_deadline_event_before_the_deadline_is_ignored() -> None:
    t = apply(AWAITING_2FA, EventType.DEADLINE_PASSED, now=NOW + timedelta(seconds=59))
    assert_ignored(t, AWAITING_2FA)


def test_changing_ones_mind_to_not_me_during_the_push_escalates() -> None:
    t = apply(AWAITING_2FA, EventType.USER_DENIED, comment="wait, that wasn't me")
    assert t.state.status is Status.ESCALATED
    assert t.state.escalation_reason is EscalationReason.NOT_ME
    assert t.state.user_answer == "denied"
    assert t.effects[-1] == PostEscalation(EscalationReason.NOT_ME)


def test_second_confirmation_during_the_push_is_ignored() -> None:
    assert_ignored(apply(AWAITING_2FA, EventType.USER_CONFIRMED), AWAITING_2FA)


# --- escalated / triaging --------------------------------------------------------------------


def test_claim_moves_to_triaging_and_records_who() -> None:
    t = apply(ESCALATED, EventType.CLAIMED, actor="UALICE")
    assert t.state.status is Status.TRIAGING
    assert t.state.claimed_by == "UALICE"
    assert t.state.escalation_reason is EscalationReason.NO_RESPONSE
    assert t.effects == (UpdateEscalation(),)


def test_claim_by_someone_else_reassigns() -> None:
    t = apply(TRIAGING, EventType.CLAIMED, actor="UCAROL")
    assert t.state.status is Status.TRIAGING
    assert t.state.claimed_by == "UCAROL"
    assert t.effects == (UpdateEscalation(),)


def test_claim_by_the_current_owner_is_ignored() -> None:
    assert_ignored(apply(TRIAGING, EventType.CLAIMED, actor="UALICE"), TRIAGING)


@pytest.mark.parametrize("state", [ESCALATED, TRIAGING], ids=["escalated", "triaging"])
def test_benign_verdict_closes_as_benign(state: AlertState) -> None:
    t = apply(state, EventType.RESOLVED_BENIGN, actor="UALICE", comment="pentest")
    assert t.state.status is Status.CLOSED
    assert t.state.outcome is Outcome.BENIGN
    assert t.state.escalation_reason is EscalationReason.NO_RESPONSE
    assert t.effects == (UpdateEscalation(),)


@pytest.mark.parametrize("state", [ESCALATED, TRIAGING], ids=["escalated", "triaging"])
def test_confirmed_compromise_closes_and_resets_sessions(state: AlertState) -> None:
    t = apply(state, EventType.CONFIRMED_COMPROMISE, actor="UALICE")
    assert t.state.status is Status.CLOSED
    assert t.state.outcome is Outcome.COMPROMISED
    assert t.effects == (ResetSessions(), UpdateEscalation())


def test_late_duo_result_is_recorded_without_changing_status() -> None:
    timed_out = apply(AWAITING_2FA, EventType.DEADLINE_PASSED, now=NOW + timedelta(seconds=61))
    t = apply(timed_out.state, EventType.DUO_APPROVED)
    assert t.changed
    assert t.state.status is Status.ESCALATED
    assert t.state.escalation_reason is EscalationReason.DUO_TIMEOUT
    assert t.state.duo_result == "duo_approved"
    # An out-of-time approval is not verification.
    assert t.state.duo_approved_seen is False
    assert t.effects == (UpdateEscalation(),)


def test_late_duo_result_is_recorded_while_triaging_too() -> None:
    state = replace(
        AWAITING_2FA,
        status=Status.TRIAGING,
        escalation_reason=EscalationReason.DUO_TIMEOUT,
        respond_by=None,
        claimed_by="UALICE",
    )
    t = apply(state, EventType.DUO_DENIED)
    assert t.state.status is Status.TRIAGING
    assert t.state.duo_result == "duo_denied"


def test_second_duo_result_after_escalation_is_ignored() -> None:
    escalated = apply(AWAITING_2FA, EventType.DUO_DENIED).state
    assert_ignored(apply(escalated, EventType.DUO_APPROVED), escalated)


def test_duo_result_for_a_push_never_started_is_ignored() -> None:
    assert_ignored(apply(ESCALATED, EventType.DUO_APPROVED), ESCALATED)


def test_late_denial_after_always_escalate_is_recorded_for_the_team() -> None:
    escalated = apply(AWAITING_2FA, EventType.DUO_APPROVED, policy=ALWAYS).state
    t = apply(escalated, EventType.USER_DENIED, comment="actually no", policy=ALWAYS)
    assert t.changed
    assert t.state.status is Status.ESCALATED
    assert t.state.escalation_reason is EscalationReason.ALWAYS_ESCALATE
    assert t.state.user_answer == "denied"
    assert t.state.user_comment == "actually no"
    assert t.effects == (UpdateEscalation(),)


def test_late_denial_after_no_response_is_recorded_for_the_team() -> None:
    t = apply(ESCALATED, EventType.USER_DENIED)
    assert t.state.user_answer == "denied"
    assert t.state.escalation_reason is EscalationReason.NO_RESPONSE
    assert t.effects == (UpdateEscalation(),)


def test_repeated_late_denial_is_ignored() -> None:
    escalated = apply(AWAITING_ACK, EventType.USER_DENIED).state
    assert_ignored(apply(escalated, EventType.USER_DENIED), escalated)


@pytest.mark.parametrize(
    "reason",
    [EscalationReason.UNKNOWN_USER, EscalationReason.USER_EXEMPT, EscalationReason.DM_FAILED],
)
def test_denial_on_an_alert_the_user_was_never_asked_about_is_ignored(
    reason: EscalationReason,
) -> None:
    state = AlertState(Status.ESCALATED, escalation_reason=reason)
    assert_ignored(apply(state, EventType.USER_DENIED), state)


def test_late_confirmation_after_escalation_is_ignored_as_unverified() -> None:
    assert_ignored(apply(ESCALATED, EventType.USER_CONFIRMED), ESCALATED)
    always = apply(AWAITING_2FA, EventType.DUO_APPROVED, policy=ALWAYS).state
    assert_ignored(apply(always, EventType.USER_CONFIRMED, policy=ALWAYS), always)


# --- ignored ---------------------------------------------------------------------------------


RESOLVED = AlertState(
    Status.RESOLVED,
    outcome=Outcome.CONFIRMED,
    user_answer="confirmed",
    duo_result="duo_approved",
    duo_approved_seen=True,
)
CLOSED = replace(ESCALATED, status=Status.CLOSED, outcome=Outcome.COMPROMISED)


@pytest.mark.parametrize("state", [RESOLVED, CLOSED], ids=["resolved", "closed"])
@pytest.mark.parametrize("event_type", list(EventType))
def test_anything_on_a_terminal_alert_is_ignored(state: AlertState, event_type: EventType) -> None:
    t = apply(state, event_type, now=NOW + timedelta(days=1), policy=ALWAYS)
    assert_ignored(t, state)
    assert "terminal" in t.note


@pytest.mark.parametrize(
    ("state", "event_type"),
    [
        (NEW, EventType.USER_CONFIRMED),
        (NEW, EventType.DUO_APPROVED),
        (NEW, EventType.DEADLINE_PASSED),
        (NEW, EventType.CLAIMED),
        (NEW, EventType.RESOLVED_BENIGN),
        (AWAITING_ACK, EventType.DM_SENT),
        (AWAITING_ACK, EventType.SNOOZE_MATCHED),
        (AWAITING_ACK, EventType.RESOLVED_BENIGN),
        (AWAITING_2FA, EventType.DM_SENT),
        (AWAITING_2FA, EventType.CLAIMED),
        (ESCALATED, EventType.DEADLINE_PASSED),
        (ESCALATED, EventType.SNOOZE_MATCHED),
        (TRIAGING, EventType.USER_RESOLVED),
    ],
)
def test_event_that_does_not_fit_the_state_is_ignored(
    state: AlertState, event_type: EventType
) -> None:
    t = apply(state, event_type, now=NOW + timedelta(days=1), policy=SNOOZABLE)
    assert_ignored(t, state)
    assert t.note == f"ignored: {event_type} while {state.status}"


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        transition(NEW, Event(EventType.DM_SENT), datetime(2024, 5, 1, 12, 0), POLICY)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_policy_refuses_nonsense_timeouts(bad: float) -> None:
    with pytest.raises(ValueError, match="ack_timeout"):
        Policy(ack_timeout=bad, duo_timeout=60.0)
    with pytest.raises(ValueError, match="duo_timeout"):
        Policy(ack_timeout=60.0, duo_timeout=bad)


def test_status_strings_are_the_public_contract() -> None:
    assert [s.value for s in Status] == [
        "new",
        "awaiting_ack",
        "awaiting_2fa",
        "resolved",
        "escalated",
        "triaging",
        "closed",
        "held",
    ]


def test_happy_path_end_to_end() -> None:
    state = NEW
    for step in (EventType.USER_RESOLVED, EventType.DM_SENT, EventType.USER_CONFIRMED):
        state = apply(state, step).state
    t = apply(state, EventType.DUO_APPROVED, now=NOW + timedelta(seconds=30))
    assert (t.state.status, t.state.outcome) == (Status.RESOLVED, Outcome.CONFIRMED)
