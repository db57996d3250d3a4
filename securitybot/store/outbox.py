"""Outbox rows: side effects recorded in the same transaction as the change that caused them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Integer, Table, bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from securitybot.store.models import Outbox, UTCDateTime, utcnow

OUTBOX = cast(Table, Outbox.__table__)
_INSERT = insert(OUTBOX)
_INSERT_IDEMPOTENT = {
    "postgresql": postgresql.insert(OUTBOX).on_conflict_do_nothing(),
    "sqlite": sqlite.insert(OUTBOX).on_conflict_do_nothing(),
}


_ENQUEUED = "outbox.enqueued"


def enqueued(session: Session) -> set[str]:
    """The effects this transaction queued so far: whom to wake once it commits."""
    found: set[str] = session.info.setdefault(_ENQUEUED, set())
    return found


def _row(
    effect: str, payload: dict[str, Any] | None, alert_id: int | None, key: str | None,
    at: datetime | None, now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """A new pending outbox row's values."""
    return {
        "alert_id": alert_id,
        "effect": effect,
        "payload": payload or {},
        "idempotency_key": key,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": at or now,
        "created_at": now,
    }


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
    values = _row(effect, payload, alert_id, idempotency_key, at, utcnow())
    dialect = session.get_bind().dialect.name
    stmt = _INSERT_IDEMPOTENT.get(dialect, _INSERT) if idempotency_key else _INSERT
    session.connection().execute(stmt, values)
    enqueued(session).add(effect)


def enqueue_leased(
    session: Session,
    *,
    effect: str,
    lease: timedelta,
    payload: dict[str, Any] | None = None,
    alert_id: int | None = None,
    idempotency_key: str,
) -> tuple[int, datetime] | None:
    """An outbox row already claimed by the writer for ``lease``, for a job it runs at once
    itself (``Dispatcher.hand_over``): no other claimer takes it while the lease is renewed,
    and if the writer dies it is claimed like any other once the lease runs out. Its id and
    ``created_at``; None if a row with the key was there already (that one is not ours)."""
    now = utcnow()
    values = {**_row(effect, payload, alert_id, idempotency_key, None, now),
              "claims": 1, "locked_until": now + lease}  # fmt: skip
    dialect = session.get_bind().dialect.name
    stmt = _INSERT_IDEMPOTENT.get(dialect, _INSERT).returning(OUTBOX.c.id)
    row = session.connection().execute(stmt, values).first()
    return None if row is None else (int(row[0]), now)


def mark_delivery_started(session: Session, job_id: int, *, started: bool = True) -> None:
    """Note that the job is about to reach out (post to Slack): committed before the call, so
    any later run of the job knows the first may have landed and checks before repeating it.
    ``started=False`` takes the note back when Slack answered that it posted nothing."""
    session.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id == job_id)
        .values(delivery_started_at=utcnow() if started else None)
    )


def enqueue_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Several idempotent outbox rows (each with an ``idempotency_key``) in one executemany."""
    if not rows:
        return
    now = utcnow()
    values = [
        {
            "alert_id": r.get("alert_id"),
            "effect": r["effect"],
            "payload": r.get("payload") or {},
            "idempotency_key": r["idempotency_key"],
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": r.get("at") or now,
            "created_at": now,
        }
        for r in rows
    ]
    dialect = session.get_bind().dialect.name
    session.connection().execute(_INSERT_IDEMPOTENT.get(dialect, _INSERT), values)
    enqueued(session).update(r["effect"] for r in rows)


def mark_done(session: Session, job_ids: Sequence[int]) -> None:
    """Record jobs as done in the caller's transaction, the one that did their work (so the
    work and its record commit together). A job no longer pending is left as it is."""
    if job_ids:
        session.connection().execute(_MARK_DONE, {"ids": list(job_ids), "now": utcnow()})


_MARK_DONE = (
    update(OUTBOX)
    .where(
        OUTBOX.c.id.in_(bindparam("ids", type_=Integer(), expanding=True)),
        OUTBOX.c.status == "pending",
    )
    .values(status="done", done_at=bindparam("now", type_=UTCDateTime()), locked_until=None)
)
