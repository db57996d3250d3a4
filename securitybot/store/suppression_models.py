"""Suppression rules: the security team's maintenance windows.

A rule names an alert kind and glob matchers on the alert's fields (``host=build-*``); a new
alert that matches an active rule is stored and closed as ``suppressed`` with the rule named,
never dropped. Rules always expire; revoking one keeps the row (and its history).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from securitybot.store.base import Base, BigId, UTCDateTime, utcnow


class SuppressionRule(Base):
    __tablename__ = "suppression_rules"
    __table_args__ = (Index("ix_suppression_rules_kind_expires_at", "kind", "expires_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    # {"host": "build-*", "source": "ci"}: every field must match its glob (AND).
    matchers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(64))
