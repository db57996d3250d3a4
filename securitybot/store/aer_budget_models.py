"""SQL tables of AER's reset budget: automatic resets granted per org, and the resets held
past the budget for a responder to release or discard (aer.reset_budget, docs/scaling.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from securitybot.store.base import Base, BigId, UTCDateTime, utcnow


class AerResetBudget(Base):
    """One row per org, locked by every transaction that spends or holds the org's resets, so
    concurrent replicas and workers count one after another."""

    __tablename__ = "aer_reset_budgets"

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AerResetGrant(Base):
    """An automatic reset the budget allowed, at wall-clock time: the sliding window counts
    these. Rows older than the window are deleted as the org spends again."""

    __tablename__ = "aer_reset_grants"
    __table_args__ = (Index("ix_aer_reset_grants_org_at", "org", "granted_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(64))
    anomaly_id: Mapped[int] = mapped_column(BigInteger)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AerHeldBatch(Base):
    """The resets of one org held within one budget window: one escalation message, updated
    in place, and one decision by a responder (release or discard) for all of them."""

    __tablename__ = "aer_held_batches"
    __table_args__ = (Index("ix_aer_held_batches_org_status", "org", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|released|discarded
    resets: Mapped[int] = mapped_column(Integer, default=0)  # held users
    anomalies: Mapped[int] = mapped_column(Integer, default=0)  # held decisions
    budget_count: Mapped[int] = mapped_column(Integer)
    budget_per: Mapped[float] = mapped_column(Float)
    # Bumped on every change; the Slack message converges on the newest one.
    version: Mapped[int] = mapped_column(Integer, default=1)
    shown_version: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str | None] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AerHeldReset(Base):
    """A user whose automatic reset was held: once per batch, however many anomalies."""

    __tablename__ = "aer_held_resets"
    __table_args__ = (UniqueConstraint("batch_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_id: Mapped[int] = mapped_column(BigInteger)
    org: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(32))
    # The first held decision's id and the reset job's payload (sessions, ip, reason...).
    anomaly_id: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="held")  # held|released|discarded
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
