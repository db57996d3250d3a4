"""Exempt accounts: their alerts skip the DM and go straight to the team (never closed)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

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
