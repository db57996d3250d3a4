"""Alerts and their outbox jobs written straight to the store, for flow tests that start
mid-conversation, and the pending jobs read back as the dispatcher hands them to a lane."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from securitybot.outbox.dispatcher import Job
from securitybot.store.db import Database
from securitybot.store.models import Alert, Outbox


def stored_alert(db: Database, *, status: str, **values: Any) -> int:
    """Alice's `flurb -export` alert in ``status``, with any other columns given; its id."""
    with db.write() as session:
        alice = {"kind": "sensitive_command", "severity": "high", "source": "test",
                 "user_given": "alice@example.com", "user_id": "UALICE",
                 "title": "flurb -export"}  # fmt: skip
        alert = Alert(**{**alice, **values}, status=status)
        session.add(alert)
        session.flush()
        return alert.id


def new_alert(db: Database, user: str, key: str, **values: Any) -> int:
    """A just-ingested alert for ``user`` (not yet looked up in Slack) with its pending
    start_conversation job, as ingest leaves it; its id."""
    alert_id = stored_alert(db, status="new", user_id=None, user_given=user, dedup_key=key,
                            **values)  # fmt: skip
    with db.write() as session:
        session.add(Outbox(alert_id=alert_id, effect="start_conversation", payload={},
                           idempotency_key=f"start:{alert_id}"))  # fmt: skip
    return alert_id


def pending_jobs(db: Database, effect: str) -> list[Job]:
    """The pending ``effect`` jobs, oldest first, as the dispatcher hands them to its lane."""
    with db.read() as session:
        rows = session.scalars(
            select(Outbox).where(Outbox.effect == effect, Outbox.status == "pending")
            .order_by(Outbox.id)
        ).all()  # fmt: skip
        return [Job(id=r.id, effect=effect, alert_id=r.alert_id, payload=r.payload or {},
                    attempts=r.attempts, created_at=r.created_at) for r in rows]  # fmt: skip
