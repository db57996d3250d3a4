"""Snoozes: once Duo confirmed an alert, its owner may silence the same kind in the same scope."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from securitybot.store import alerts as alert_store
from securitybot.store.models import Alert, Snooze, utcnow

DURATIONS = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}


def scope_of(alert: Alert) -> dict[str, Any]:
    keys = (alert.policy or {}).get("snooze_scope") or ["host"]
    details = alert.details or {}
    return {k: details.get(k) for k in keys}


def scope_key(scope: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(scope, sort_keys=True, default=str).encode()).hexdigest()


def can_snooze(alert: Alert) -> bool:
    policy = alert.policy or {}
    return (
        alert.status == "resolved"
        and alert.outcome == "confirmed"
        and bool(policy.get("allow_snooze"))
        and not policy.get("always_escalate")
    )


def create(session: Session, alert: Alert, duration: str, actor: str) -> Snooze:
    scope = scope_of(alert)
    snooze = Snooze(
        user_id=alert.user_id or "",
        kind=alert.kind,
        scope=scope,
        scope_key=scope_key(scope),
        source_alert_id=alert.id,
        created_at=utcnow(),
        expires_at=utcnow() + DURATIONS[duration],
    )
    session.add(snooze)
    session.flush()
    alert_store.audit(
        session, alert_id=alert.id, actor=actor, action="snooze.created",
        details={"snooze_id": snooze.id, "duration": duration, "kind": alert.kind, "scope": scope},
        subject_user=alert.user_id,
    )  # fmt: skip
    return snooze


def find_active(
    session: Session, alert: Alert, now: datetime | None = None, *, user_id: str | None = None
) -> Snooze | None:
    """The active snooze covering ``alert``, for its person (``user_id`` when the alert does
    not carry it yet)."""
    user_id = user_id or alert.user_id
    if not user_id:
        return None
    now = now or utcnow()
    return session.scalars(
        select(Snooze)
        .where(
            Snooze.user_id == user_id,
            Snooze.kind == alert.kind,
            Snooze.scope_key == scope_key(scope_of(alert)),
            Snooze.revoked_at.is_(None),
            Snooze.expires_at > now,
        )
        .limit(1)
    ).first()


def to_public(s: Snooze) -> dict[str, Any]:
    return {
        "id": s.id, "user_id": s.user_id, "kind": s.kind, "scope": s.scope,
        "source_alert_id": s.source_alert_id, "created_at": s.created_at.isoformat(),
        "expires_at": s.expires_at.isoformat(),
        "revoked_at": s.revoked_at.isoformat() if s.revoked_at else None,
        "revoked_by": s.revoked_by,
    }  # fmt: skip


def list_recent(session: Session, *, include_all: bool = False) -> list[Snooze]:
    q = select(Snooze).order_by(Snooze.id.desc()).limit(500)
    if not include_all:
        q = q.where(Snooze.revoked_at.is_(None), Snooze.expires_at > utcnow())
    return list(session.scalars(q))


def revoke(session: Session, *, snooze_id: int, actor: str, via: dict[str, Any]) -> bool:
    """Revoke an active snooze, audited as ``actor``; False if there is none with that id."""
    s = session.get(Snooze, snooze_id)
    if s is None or s.revoked_at is not None:
        return False
    s.revoked_at, s.revoked_by = utcnow(), actor
    alert_store.audit(session, alert_id=s.source_alert_id, actor=actor, action="snooze.revoked",
                      subject_user=s.user_id, details={"snooze_id": s.id, **via})  # fmt: skip
    return True
