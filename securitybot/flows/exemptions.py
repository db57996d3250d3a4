"""Exempt accounts: their alerts skip the DM and go straight to the team (never closed)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from securitybot.store import alerts as alert_store
from securitybot.store.models import Exemption, utcnow


def find(
    session: Session, identifiers: Iterable[str | None], now: datetime | None = None
) -> Exemption | None:
    ids = [i.lower() if "@" in i else i for i in identifiers if i]
    if not ids:
        return None
    now = now or utcnow()
    return session.scalars(
        select(Exemption)
        .where(
            Exemption.user.in_(ids), or_(Exemption.expires_at.is_(None), Exemption.expires_at > now)
        )
        .limit(1)
    ).first()


def to_public(e: Exemption) -> dict[str, Any]:
    return {
        "id": e.id, "user": e.user, "reason": e.reason, "created_by": e.created_by,
        "created_at": e.created_at.isoformat(),
        "expires_at": e.expires_at.isoformat() if e.expires_at else None,
    }  # fmt: skip


def list_all(session: Session) -> list[Exemption]:
    return list(session.scalars(select(Exemption).order_by(Exemption.id)))


def create(
    session: Session,
    *,
    user: str,
    reason: str,
    actor: str,
    expires_at: datetime | None,
    via: dict[str, Any],
) -> Exemption:
    """Exempt ``user``, audited as ``actor``; raises IntegrityError if they already are.

    ``via`` says where the request came from (the API and its source, or Slack) for the audit.
    """
    # An expired exemption still holds the unique user: it must not block a new one.
    session.execute(
        sql_delete(Exemption).where(
            Exemption.user == user,
            Exemption.expires_at.is_not(None),
            Exemption.expires_at <= utcnow(),
        )
    )
    exemption = Exemption(
        user=user, reason=reason, created_by=actor, created_at=utcnow(), expires_at=expires_at
    )
    session.add(exemption)
    session.flush()
    alert_store.audit(
        session, actor=actor, action="exemption.created", subject_user=user,
        details={"exemption_id": exemption.id, "reason": reason,
                 "expires_at": expires_at.isoformat() if expires_at else None, **via},
    )  # fmt: skip
    return exemption


def delete(session: Session, *, exemption_id: int, actor: str, via: dict[str, Any]) -> bool:
    e = session.get(Exemption, exemption_id)
    if e is None:
        return False
    alert_store.audit(session, actor=actor, action="exemption.deleted", subject_user=e.user,
                      details={"exemption_id": e.id, **via})  # fmt: skip
    session.delete(e)
    return True
