"""Alert queries: idempotent creation, lookup, filtered listing with cursor pagination."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from securitybot.store.models import Alert, AuditLog, utcnow

PUBLIC_FIELDS = (
    "id", "kind", "severity", "source", "dedup_key", "user_given", "user_id", "title",
    "description", "details", "status", "outcome", "escalation_reason", "respond_by",
    "occurred_at", "user_answer", "user_comment", "duo_result", "claimed_by", "created_at",
    "updated_at", "suppression_id",
)  # fmt: skip


def to_public(alert: Alert | SimpleNamespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in PUBLIC_FIELDS:
        value = getattr(alert, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    out["user"] = alert.user_given
    return out


ALERTS = cast(Table, Alert.__table__)
AUDIT = cast(Table, AuditLog.__table__)
# Statements are built once with bind parameters: SQLAlchemy then caches their compiled form,
# which matters on the ingest hot path (building .values(...) per call costs more than the SQL).
# Only the dedup key may conflict quietly: an id someone else took must fail loudly.
_INSERT_DEDUPED = {
    "postgresql": postgresql.insert(ALERTS).on_conflict_do_nothing(
        constraint="uq_alerts_source_dedup_key"
    ),
    "sqlite": sqlite.insert(ALERTS).on_conflict_do_nothing(
        index_elements=[ALERTS.c.source, ALERTS.c.dedup_key]
    ),
}
_INSERT_ONCE = {dialect: stmt.returning(ALERTS.c.id) for dialect, stmt in _INSERT_DEDUPED.items()}
_INSERT_AUDIT = insert(AUDIT)


def insert_alert_once(session: Session, values: dict[str, Any]) -> int | None:
    """Insert unless ``(source, dedup_key)`` exists; returns the new id, or None if it existed.

    ON CONFLICT DO NOTHING (rather than catching IntegrityError) keeps the transaction usable
    on PostgreSQL and makes two concurrent posts of the same alert race-free.
    """
    stmt = _INSERT_ONCE.get(session.get_bind().dialect.name, insert(ALERTS).returning(ALERTS.c.id))
    row = session.connection().execute(stmt, values).first()
    return None if row is None else int(row[0])


_RESERVE_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('alerts', 'id')) FROM generate_series(1, :n)"
)
_STORED_OF = text("SELECT id FROM alerts WHERE id = ANY(:ids)")
# SQLite has no sequence: the next ids are max(id) + 1 onwards (no AUTOINCREMENT). This process
# writes one transaction at a time; another process writing meanwhile (pysqlite opens no
# transaction for the SELECT) makes the insert fail on the taken id, never pass it off as ours.
_SQLITE_NEXT_ID = text("SELECT coalesce(max(id), 0) + 1 FROM alerts")
_SQLITE_STORED_OF = text("SELECT id FROM alerts WHERE id BETWEEN :low AND :high")


def insert_alerts_once(session: Session, rows: Sequence[dict[str, Any]]) -> list[int | None]:
    """Batch form of :func:`insert_alert_once`: new ids in input order, None where it existed.

    On PostgreSQL each statement is a network round trip, so ids are reserved from the sequence
    in one query, the rows go in as one pipelined executemany of the single-row INSERT, and one
    query says which reserved ids were stored (the others hit the dedup constraint). Every
    statement's text is the same whatever the batch size: a multi-row VALUES ... RETURNING
    changes with each size and is too long for psycopg's query cache, so it was parsed again
    on every batch (28% of ingest's CPU).
    """
    conn = session.connection()
    dialect = conn.dialect.name
    if dialect not in ("postgresql", "sqlite") or len(rows) < 2:
        return [insert_alert_once(session, r) for r in rows]
    if dialect == "postgresql":
        ids = [int(i) for i in conn.execute(_RESERVE_IDS, {"n": len(rows)}).scalars()]
        stored_of: tuple[Any, dict[str, Any]] = (_STORED_OF, {"ids": ids})
    else:
        # A statement per row cost 15% of ingest's CPU on SQLite.
        low = int(conn.execute(_SQLITE_NEXT_ID).scalar_one())
        ids = list(range(low, low + len(rows)))
        stored_of = (_SQLITE_STORED_OF, {"low": low, "high": ids[-1]})
    conn.execute(_INSERT_DEDUPED[dialect], [{**r, "id": i} for r, i in zip(rows, ids, strict=True)])
    # Only this transaction can have used the ids it reserved: those present are the ones it
    # stored (the others hit the dedup constraint).
    stored = set(conn.execute(*stored_of).scalars())
    return [i if i in stored else None for i in ids]


def audit_many(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Several audit rows in one executemany (a single multi-row INSERT on PostgreSQL)."""
    if rows:
        session.connection().execute(_INSERT_AUDIT, list(rows))


def find_by_dedup(session: Session, source: str, dedup_key: str) -> Alert | None:
    return session.scalars(
        select(Alert).where(Alert.source == source, Alert.dedup_key == dedup_key)
    ).first()


def get(session: Session, alert_id: int) -> Alert | None:
    return session.get(Alert, alert_id)


def audit(
    session: Session,
    *,
    action: str,
    actor: str,
    alert_id: int | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    details: dict[str, Any] | None = None,
    org: str | None = None,
    subject_user: str | None = None,
    at: datetime | None = None,
) -> None:
    session.connection().execute(
        _INSERT_AUDIT,
        {
            "alert_id": alert_id,
            "actor": actor,
            "action": action,
            "from_status": from_status,
            "to_status": to_status,
            "details": details or {},
            "org": org,
            "subject_user": subject_user,
            "created_at": at or utcnow(),
        },
    )


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"a:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = raw.partition(":")
        if prefix != "a" or not (value.isascii() and value.isdigit() and len(value) <= 19):
            raise ValueError
        if int(value) > 2**63 - 1:  # past BIGINT: no such row, and the driver would fail
            raise ValueError
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValueError("cursor is not one this server handed out") from None


@dataclass(frozen=True)
class AlertFilter:
    status: Sequence[str] = ()
    user: str | None = None
    kind: str | None = None
    since: datetime | None = None
    before_id: int | None = None
    limit: int = 50
    # Only this source's alerts (an ``ingest`` credential without ``admin`` reads its own).
    source: str | None = None


def list_alerts(session: Session, f: AlertFilter) -> tuple[list[Alert], str | None]:
    """Newest first; the cursor is the last id seen, so pages stay stable while alerts arrive."""
    q = select(Alert).order_by(Alert.id.desc()).limit(f.limit + 1)
    if f.status:
        q = q.where(Alert.status.in_(list(f.status)))
    if f.user:
        q = q.where((Alert.user_given == f.user) | (Alert.user_id == f.user))
    if f.kind:
        q = q.where(Alert.kind == f.kind)
    if f.source is not None:
        q = q.where(Alert.source == f.source)
    if f.since:
        q = q.where(Alert.created_at >= f.since)
    if f.before_id is not None:
        q = q.where(Alert.id < f.before_id)
    rows = list(session.scalars(q))
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    return rows, (encode_cursor(rows[-1].id) if more and rows else None)
