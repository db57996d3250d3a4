"""A typed "no" is confirmed before it pages the team: the first one is only remembered.

The pending denial lives in the audit log (``answer.denial_pending``), so it holds across
replicas and restarts and is itself on the record. It counts only for the same alert, while
that alert still waits for an answer, and for ``WINDOW``.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from securitybot.flows.transitions import load_for_update
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, utcnow

PENDING = "answer.denial_pending"
WINDOW = timedelta(minutes=15)


def confirm_or_remember(
    db: Database, alert: Alert, user: str, comment: str | None, reply_ts: str | None,
    *, confirming: bool,
) -> tuple[bool, str | None]:  # fmt: skip
    """(escalate now?, the comment to escalate with). The check and the note are one
    transaction with the alert row locked, so two quick "no"s count as a "no" and its
    confirmation rather than as two unconfirmed ones."""
    with db.write() as session:
        load_for_update(session, alert.id)
        first = session.scalars(
            select(AuditLog)
            .where(
                AuditLog.alert_id == alert.id,
                AuditLog.actor == user,
                AuditLog.action == PENDING,
                AuditLog.created_at >= utcnow() - WINDOW,
            )
            .order_by(AuditLog.id.desc())
            .limit(1)
        ).first()
        if first is not None:
            return True, comment or (first.details or {}).get("comment")
        if not confirming:
            alert_store.audit(
                session, alert_id=alert.id, actor=user, action=PENDING,
                from_status=alert.status, to_status=alert.status, subject_user=alert.user_id,
                details={"via": "text", **({"comment": comment} if comment else {}),
                         **({"reply_ts": reply_ts} if reply_ts else {})},
            )  # fmt: skip
        return False, None
