"""Apply one domain event to a stored alert: state, audit row and outbox rows, atomically.

This is the only code path that changes an alert's status. The UPDATE is conditional on the
version read, so two replicas (or a button click racing the deadline sweep) cannot both win.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from securitybot import metrics
from securitybot.domain import (
    AlertState,
    Effect,
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
from securitybot.flows import webhooks
from securitybot.paging import hooks as paging
from securitybot.store import alerts as alert_store
from securitybot.store.models import Alert, utcnow
from securitybot.store.outbox import enqueue

logger = logging.getLogger(__name__)

EFFECT_NAMES: dict[type[Any], str] = {
    SendDM: "send_dm",
    StartDuoPush: "start_duo_push",
    UpdateDM: "update_dm",
    PostEscalation: "post_escalation",
    UpdateEscalation: "update_escalation",
    ResetSessions: "reset_sessions",
}


class ConcurrentUpdate(Exception):
    """Someone else changed the alert between our read and our write; re-read and retry."""


@dataclass(frozen=True)
class Applied:
    alert: Alert
    transition: Transition
    from_status: str


def state_of(alert: Alert) -> AlertState:
    return AlertState(
        status=Status(alert.status),
        outcome=Outcome(alert.outcome) if alert.outcome else None,
        escalation_reason=EscalationReason(alert.escalation_reason)
        if alert.escalation_reason
        else None,
        respond_by=alert.respond_by,
        user_answer=alert.user_answer,
        user_comment=alert.user_comment,
        duo_result=alert.duo_result,
        claimed_by=alert.claimed_by,
        duo_approved_seen=alert.duo_result == "duo_approved" and alert.status == "resolved",
    )


def policy_of(alert: Alert) -> Policy:
    p = alert.policy or {}
    return Policy(
        ack_timeout=float(p.get("ack_timeout", 600)),
        duo_timeout=float(p.get("duo_timeout", 120)),
        always_escalate=bool(p.get("always_escalate", False)),
        allow_snooze=bool(p.get("allow_snooze", False)),
    )


def _enum_value(v: Any) -> Any:
    return getattr(v, "value", v)


def new_values(
    alert: Alert, t: Transition, now: datetime, also_set: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The columns a changed transition writes."""
    s = t.state
    values: dict[str, Any] = {
        "status": s.status.value,
        "outcome": _enum_value(s.outcome),
        "escalation_reason": _enum_value(s.escalation_reason),
        "respond_by": s.respond_by,
        "user_answer": s.user_answer,
        "user_comment": s.user_comment,
        "duo_result": s.duo_result,
        "claimed_by": s.claimed_by,
        "version": alert.version + 1,
        "updated_at": now,
    }
    if s.status == Status.ESCALATED and alert.status != Status.ESCALATED.value:
        values["escalated_at"] = now  # starts the claim clock of the escalation chain
    if s.status != Status.AWAITING_ACK:
        values["remind_at"] = None
    values.update(also_set or {})
    return values


def effect_row(alert_id: int, version: int, idx: int, effect: Effect) -> dict[str, Any]:
    """The outbox row (for ``enqueue``/``enqueue_many``) that carries out ``effect``."""
    name = EFFECT_NAMES[type(effect)]
    payload = {k: _enum_value(v) for k, v in dataclasses.asdict(effect).items()}
    key = (
        f"{alert_id}:once:{name}"
        if type(effect) in ONCE_PER_ALERT
        else f"{alert_id}:v{version}:{idx}:{name}"
    )
    return {"effect": name, "payload": payload, "alert_id": alert_id, "idempotency_key": key}


def apply_event(
    session: Session,
    alert: Alert,
    event: Event,
    *,
    now: datetime | None = None,
    also_set: dict[str, Any] | None = None,
    audit_details: dict[str, Any] | None = None,
    mirrored_from: int | None = None,
) -> Applied:
    """Run the state machine and persist its result in the caller's transaction.

    ``also_set`` carries adapter facts to store with the change (DM channel/ts, Duo txid,
    resolved user id). Ignored events change nothing but are still audited, because a refused
    or late answer is exactly what an investigator wants to see.
    """
    now = now or utcnow()
    before = state_of(alert)
    t = transition(before, event, now, policy_of(alert))
    details: dict[str, Any] = {"note": t.note, **(audit_details or {})}
    if event.comment:
        details["comment"] = event.comment
    if not t.changed:
        alert_store.audit(
            session,
            alert_id=alert.id,
            actor=event.actor,
            action=f"event_ignored.{event.type.value}",
            from_status=alert.status,
            to_status=alert.status,
            details=details,
            subject_user=alert.user_id,
            at=now,
        )
        return Applied(alert, t, alert.status)
    s = t.state
    values = new_values(alert, t, now, also_set)
    if mirrored_from is not None:
        details["grouped_under"] = mirrored_from
    result = session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.version == alert.version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ConcurrentUpdate(f"alert {alert.id} changed concurrently")
    from_status = alert.status
    previous_update = alert.updated_at
    # The row is already written: record the values as the committed state, so the ORM
    # does not flush a second UPDATE of the same row at commit.
    for key, value in values.items():
        set_committed_value(alert, key, value)
    alert_store.audit(
        session,
        alert_id=alert.id,
        actor=event.actor,
        action=f"alert.{event.type.value}",
        from_status=from_status,
        to_status=s.status.value,
        details=details,
        subject_user=alert.user_id,
        at=now,
    )
    if mirrored_from is None:
        _observe(alert, from_status, event, now, previous_update)
        webhooks.enqueue_for(
            session, alert, webhooks.state_events(from_status, alert, event.type.value)
        )
        for idx, effect in enumerate(t.effects):
            enqueue_effect(session, alert.id, alert.version, idx, effect)
        paging.on_transition(session, alert, from_status, event.type.value)
        _mirror_to_group(session, alert, event, now, also_set or {})
    log_change(alert, from_status, s.status.value, event)
    return Applied(alert, t, from_status)


def log_change(alert: Alert, from_status: str, to_status: str, event: Event) -> None:
    """One structured line per state change, with the ids a log search correlates on."""
    if not logger.isEnabledFor(logging.INFO):
        return
    logger.info(
        "alert %s: %s -> %s on %s", alert.id, from_status, to_status, event.type.value,
        extra={
            "alert_id": alert.id,
            "correlation_id": f"alert-{alert.parent_id or alert.id}",
            "event": event.type.value,
            "from_status": from_status,
            "to_status": to_status,
            "actor": event.actor,
        },
    )  # fmt: skip


# The machine asks for these at most once in an alert's life (it enters `new`, the Duo wait,
# `escalated` and `closed` once). Their outbox key leaves out the version, so a handler that
# re-runs after its outcome was lost (and so applies its event again: user_resolved keeps the
# alert `new`) cannot queue a second DM, push or post.
ONCE_PER_ALERT: frozenset[type] = frozenset({SendDM, StartDuoPush, PostEscalation, ResetSessions})


def enqueue_effect(session: Session, alert_id: int, version: int, idx: int, effect: Effect) -> None:
    enqueue(session, **effect_row(alert_id, version, idx, effect))


def load_for_update(session: Session, alert_id: int) -> Alert | None:
    """The alert, row-locked on PostgreSQL so concurrent writers queue instead of conflicting."""
    from sqlalchemy import select

    q = select(Alert).where(Alert.id == alert_id)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    return session.scalars(q).first()


# Facts about the shared conversation that grouped alerts take over from their parent.
_SHARED = ("dm_channel", "dm_ts", "respond_by", "remind_at", "duo_txid")


_CHILD_IDS = text(
    "SELECT id FROM alerts WHERE parent_id = :parent AND status NOT IN ('resolved', 'closed')"
)


def _mirror_to_group(
    session: Session, parent: Alert, event: Event, now: datetime, also_set: dict[str, Any]
) -> None:
    """Grouped alerts follow their parent's conversation: same events, no effects of their own
    (one DM, one push, one escalation post for the whole burst)."""
    from sqlalchemy import select

    # Most alerts have no group: a cheap indexed id lookup (no ORM flush) decides that first.
    ids = session.connection().execute(_CHILD_IDS, {"parent": parent.id}).scalars().all()
    if not ids:
        return
    if event.type in _NOT_SHARED:
        _release_group(session, parent, ids)
        return
    children = session.scalars(select(Alert).where(Alert.id.in_(ids)).order_by(Alert.id)).all()
    shared = {k: also_set[k] for k in _SHARED if k in also_set}
    for child in children:
        apply_event(
            session, child, event, now=now, also_set=shared or None, mirrored_from=parent.id
        )


# A suppression rule or a snooze matched the first alert's own details (its host, say), which
# the alerts grouped under it need not share: they are not closed with it.
_NOT_SHARED = frozenset({EventType.SUPPRESSION_MATCHED, EventType.SNOOZE_MATCHED})


def _release_group(session: Session, parent: Alert, ids: Sequence[int]) -> None:
    """Take the alerts grouped under ``parent`` out of its group and start their own
    conversations (each is settled again, as if it had arrived alone)."""
    session.execute(
        update(Alert)
        .where(Alert.id.in_(list(ids)), Alert.parent_id == parent.id)
        .values(parent_id=None)
        .execution_options(synchronize_session=False)
    )
    for child_id in ids:
        child = session.get(Alert, child_id)
        if child is not None:
            set_committed_value(child, "parent_id", None)
        alert_store.audit(session, alert_id=child_id, actor="system", action="alert.ungrouped",
                          details={"parent_id": parent.id})  # fmt: skip
        enqueue(session, effect="start_conversation", alert_id=child_id,
                idempotency_key=f"start:{child_id}:released:{parent.id}")  # fmt: skip


def _observe(
    alert: Alert, from_status: str, event: Event, now: datetime, previous_update: datetime
) -> None:
    if alert.status == "escalated" and from_status != "escalated" and alert.escalation_reason:
        metrics.ESCALATIONS.labels(alert.escalation_reason).inc()
    if alert.status in ("resolved", "closed") and alert.outcome:
        metrics.OUTCOMES.labels(alert.outcome).inc()
    if event.type == EventType.DM_SENT:
        metrics.TIME_TO_FIRST_DM.observe((now - alert.created_at).total_seconds())
    elif event.type in (EventType.USER_CONFIRMED, EventType.USER_DENIED):
        # While awaiting the answer the last update was the DM being sent.
        metrics.TIME_TO_ANSWER.observe(max(0.0, (now - previous_update).total_seconds()))
    elif event.type.value.startswith("duo_"):
        metrics.DUO_RESULTS.labels(event.type.value.removeprefix("duo_")).inc()
