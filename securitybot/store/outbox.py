"""Outbox rows: side effects recorded in the same transaction as the change that caused them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from securitybot.store.models import Outbox, utcnow


def enqueue(
    session: Session,
    *,
    effect: str,
    payload: dict[str, Any] | None = None,
    alert_id: int | None = None,
    idempotency_key: str | None = None,
    at: datetime | None = None,
) -> None:
    """Add an outbox row; a second row with the same idempotency key is silently not added."""
    now = utcnow()
    values = {
        "alert_id": alert_id,
        "effect": effect,
        "payload": payload or {},
        "idempotency_key": idempotency_key,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": at or now,
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    if idempotency_key is not None and dialect == "postgresql":
        session.execute(postgresql.insert(Outbox).values(values).on_conflict_do_nothing())
    elif idempotency_key is not None and dialect == "sqlite":
        session.execute(sqlite.insert(Outbox).values(values).on_conflict_do_nothing())
    else:
        session.execute(insert(Outbox).values(values))
