"""The deadline sweep: the database owns the timers, so a restart loses no deadline."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from securitybot.domain import Event, EventType
from securitybot.flows.batch_transitions import apply_to_many
from securitybot.flows.transitions import ConcurrentUpdate, apply_event
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert, utcnow
from securitybot.store.outbox import enqueue

logger = logging.getLogger(__name__)

WAITING = ("awaiting_ack", "awaiting_2fa")
# Alerts changed per transaction. Small enough that a batch commits in well under a second,
# so a database that keeps dropping connections (failover, killed backends) still sees
# progress instead of one long transaction lost over and over.
BATCH = 50


def sweep_overdue(db: Database, *, now: datetime | None = None, limit: int = BATCH) -> int:
    """Escalate alerts whose ``respond_by`` has passed; returns how many changed.

    On PostgreSQL rows are claimed with SKIP LOCKED, so replicas sweeping at the same moment
    split the work instead of both escalating the same alert. Each batch is written set-based;
    if one of its alerts changed under us, that batch is redone alert by alert.
    """
    now = now or utcnow()
    total = 0
    while True:
        try:
            found, changed = _overdue_batch(db, now, limit, set_based=True)
        except ConcurrentUpdate:
            found, changed = _overdue_batch(db, now, limit, set_based=False)
        total += changed
        if found < limit or changed == 0:
            return total


def _overdue_batch(db: Database, now: datetime, limit: int, *, set_based: bool) -> tuple[int, int]:
    """(alerts found, alerts changed) for one transaction's worth of overdue alerts."""
    with db.write() as session:
        q = (
            select(Alert)
            # Grouped alerts follow their parent, so only parents are swept.
            .where(Alert.status.in_(WAITING), Alert.respond_by <= now, Alert.parent_id.is_(None))
            .order_by(Alert.respond_by)
            .limit(limit)
        )
        if db.is_postgres:
            q = q.with_for_update(skip_locked=True)
        alerts = list(session.scalars(q))
        event = Event(EventType.DEADLINE_PASSED)
        if set_based:
            return len(alerts), apply_to_many(session, alerts, event, now)
        changed = 0
        for alert in alerts:
            changed += int(apply_event(session, alert, event, now=now).transition.changed)
        return len(alerts), changed


def sweep_reminders(db: Database, *, now: datetime | None = None, limit: int = BATCH) -> int:
    """Queue one reminder DM for each alert halfway to its deadline."""
    now = now or utcnow()
    with db.write() as session:
        q = (
            select(Alert.id)
            .where(
                Alert.status == "awaiting_ack", Alert.remind_at <= now, Alert.parent_id.is_(None)
            )
            .limit(limit)
        )
        if db.is_postgres:
            q = q.with_for_update(skip_locked=True)
        ids = list(session.scalars(q))
        for alert_id in ids:
            # Clearing remind_at in the same transaction makes the reminder a one-off.
            session.execute(update(Alert).where(Alert.id == alert_id).values(remind_at=None))
            enqueue(session, effect="send_reminder", alert_id=alert_id,
                    idempotency_key=f"remind:{alert_id}")  # fmt: skip
    return len(ids)


def sweep_unclaimed(
    db: Database, *, claim_timeout: float, tiers: int, now: datetime | None = None, limit: int = 200
) -> int:
    """Escalations nobody claimed in time are re-posted, mentioning the next tier."""
    if tiers <= 0:
        return 0
    now = now or utcnow()
    raised = 0
    with db.write() as session:
        q = (
            select(Alert)
            .where(
                Alert.status == "escalated",
                Alert.parent_id.is_(None),
                Alert.escalated_at.is_not(None),
                Alert.escalation_tier < tiers,
            )
            .order_by(Alert.escalated_at)
            .limit(limit)
        )
        if db.is_postgres:
            q = q.with_for_update(skip_locked=True)
        for alert in session.scalars(q):
            assert alert.escalated_at is not None
            due = alert.escalated_at + timedelta(
                seconds=claim_timeout * (alert.escalation_tier + 1)
            )
            if due > now:
                continue
            tier = alert.escalation_tier + 1
            session.execute(
                update(Alert)
                .where(Alert.id == alert.id, Alert.escalation_tier == alert.escalation_tier)
                .values(escalation_tier=tier)
            )
            alert_store.audit(session, alert_id=alert.id, actor="system",
                              action="escalation.tier_raised", from_status="escalated",
                              to_status="escalated", details={"tier": tier},
                              subject_user=alert.user_id)  # fmt: skip
            enqueue(session, effect="repost_escalation", alert_id=alert.id, payload={"tier": tier},
                    idempotency_key=f"tier:{alert.id}:{tier}")  # fmt: skip
            raised += 1
    return raised


def sweep_everything(db: Database, *, claim_timeout: float, tiers: int) -> int:
    """Every timer pass, each on its own: a failure in one (a dropped connection) must not
    skip the others; under a flaky database, reminders starved behind a failing deadline pass.
    """
    passes: list[tuple[str, Callable[[], int]]] = [
        ("overdue", lambda: sweep_overdue(db)),
        ("reminders", lambda: sweep_reminders(db)),
        ("unclaimed", lambda: sweep_unclaimed(db, claim_timeout=claim_timeout, tiers=tiers)),
    ]
    changed = 0
    for name, run in passes:
        try:
            changed += run()
        except Exception:
            logger.exception("%s sweep failed; it runs again next interval", name)
    return changed
