"""Rows of every age for the data lifecycle tests, written straight into the store."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, Outbox, utcnow

DAY = timedelta(days=1)


def alert(db: Database, *, age_days: float, status: str = "resolved",
          kind: str = "sensitive_command", user: str = "alice@example.com",
          user_id: str | None = "U0ALICE", jobs: int = 2, audit: int = 2,
          **extra: Any) -> int:  # fmt: skip
    """An alert created and last changed ``age_days`` ago, with its audit rows and done jobs."""
    at = utcnow() - age_days * DAY
    with db.write() as s:
        a = Alert(kind=kind, severity="high", source="test", user_given=user, user_id=user_id,
                  title=f"{kind} by {user}", status=status, created_at=at, updated_at=at,
                  outcome="confirmed" if status == "resolved" else None, **extra)  # fmt: skip
        s.add(a)
        s.flush()
        for i in range(audit):
            s.add(AuditLog(alert_id=a.id, actor="system", action=f"step{i}", created_at=at,
                           subject_user=user_id))  # fmt: skip
        for i in range(jobs):
            s.add(Outbox(alert_id=a.id, effect="send_dm", status="done", created_at=at,
                         done_at=at, idempotency_key=f"job:{a.id}:{i}"))  # fmt: skip
        return a.id


def ago(days: float) -> datetime:
    return utcnow() - days * DAY
