"""The deadline sweep: the database owns the timers, so a restart loses no deadline."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from securitybot.domain import Event, EventType
from securitybot.flows.transitions import apply_event
from securitybot.store.db import Database
from securitybot.store.models import Alert, utcnow

logger = logging.getLogger(__name__)

WAITING = ("awaiting_ack", "awaiting_2fa")


def sweep_overdue(db: Database, *, now: datetime | None = None, limit: int = 500) -> int:
    """Escalate alerts whose ``respond_by`` has passed; returns how many changed.

    On PostgreSQL rows are claimed with SKIP LOCKED, so replicas sweeping at the same moment
    split the work instead of both escalating the same alert.
    """
    now = now or utcnow()
    total = 0
    while True:
        with db.write() as session:
            q = (
                select(Alert)
                .where(Alert.status.in_(WAITING), Alert.respond_by <= now)
                .order_by(Alert.respond_by)
                .limit(limit)
            )
            if db.is_postgres:
                q = q.with_for_update(skip_locked=True)
            alerts = list(session.scalars(q))
            changed = 0
            for alert in alerts:
                applied = apply_event(session, alert, Event(EventType.DEADLINE_PASSED), now=now)
                changed += int(applied.transition.changed)
        total += changed
        if len(alerts) < limit or changed == 0:
            return total
