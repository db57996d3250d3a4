"""``securitybot export``: alerts with their timelines (and optionally the audit log) for a
SIEM or an archive, before the purge deletes them.

Pages are read by a keyset cursor (``id > last``, in id order), each in its own short read,
so the export holds one page in memory whatever its size, never holds a long transaction, and
is stable under concurrent writes: it covers the alerts that existed when it started (ids up
to the highest then), each exactly once, with the state it has when its page is read. Alerts
that arrive meanwhile are after ``until`` (which is capped at the start) or above that id.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from sqlalchemy import func, select

from securitybot.store.alerts import to_public
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, utcnow

PAGE = 500
FORMATS = ("jsonl", "csv")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _audit(row: AuditLog) -> dict[str, Any]:
    return {
        "id": row.id, "created_at": _iso(row.created_at), "alert_id": row.alert_id,
        "actor": row.actor, "action": row.action, "from_status": row.from_status,
        "to_status": row.to_status, "org": row.org, "subject_user": row.subject_user,
        "details": row.details,
    }  # fmt: skip


def records(db: Database, since: datetime, until: datetime, *, audit: bool = False,
            page: int = PAGE) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Alerts created in [since, until), oldest id first, each with ``timeline`` (its audit
    rows in order); then, with ``audit``, every audit row created in the range."""
    until = min(until, utcnow())
    with db.read() as session:
        last_alert = session.scalar(select(func.max(Alert.id))) or 0
        last_audit = session.scalar(select(func.max(AuditLog.id))) or 0
    after = 0
    while True:
        with db.read() as session:
            alerts = session.scalars(
                select(Alert)
                .where(Alert.id > after, Alert.id <= last_alert,
                       Alert.created_at >= since, Alert.created_at < until)
                .order_by(Alert.id).limit(page)
            ).all()  # fmt: skip
            if not alerts:
                break
            steps: dict[int, list[dict[str, Any]]] = {a.id: [] for a in alerts}
            for row in session.scalars(
                select(AuditLog).where(AuditLog.alert_id.in_(list(steps)))
                .order_by(AuditLog.id)
            ):  # fmt: skip
                assert row.alert_id is not None
                steps[row.alert_id].append(_audit(row))
            out = [{"record": "alert", **to_public(a), "timeline": steps[a.id]} for a in alerts]
        yield from out
        after = alerts[-1].id
    if not audit:
        return
    after = 0
    while True:
        with db.read() as session:
            rows = session.scalars(
                select(AuditLog)
                .where(AuditLog.id > after, AuditLog.id <= last_audit,
                       AuditLog.created_at >= since, AuditLog.created_at < until)
                .order_by(AuditLog.id).limit(page)
            ).all()  # fmt: skip
            out = [{"record": "audit", **_audit(r)} for r in rows]
        if not rows:
            break
        yield from out
        after = rows[-1].id


ALERT_COLUMNS = ("record", "id", "kind", "severity", "source", "dedup_key", "user",
                 "user_id", "title", "description", "details", "status", "outcome",
                 "escalation_reason", "respond_by", "occurred_at", "user_answer", "user_comment",
                 "duo_result", "claimed_by", "created_at", "updated_at", "suppression_id",
                 "timeline")  # fmt: skip
AUDIT_COLUMNS = ("alert_id", "actor", "action", "from_status", "to_status", "org",
                 "subject_user")  # fmt: skip
CSV_COLUMNS = ALERT_COLUMNS + AUDIT_COLUMNS


def _cell(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value


def write(out: IO[str], rows: Iterator[dict[str, Any]], fmt: str) -> int:
    """Write ``rows`` as JSON lines or CSV (JSON inside the details and timeline cells)."""
    n = 0
    if fmt == "csv":
        w = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: _cell(v) for k, v in row.items()})
            n += 1
        return n
    for row in rows:
        out.write(json.dumps(row, sort_keys=True, default=str) + "\n")
        n += 1
    return n
