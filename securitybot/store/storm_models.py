"""SQL tables of the storm guard (issue 27): the DMs each detection sent per window, and the
storms that held the rest for a responder to release, discard or escalate (README "Storms")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from securitybot.store.base import Base, BigId, UTCDateTime, utcnow


class StormKey(Base):
    """One row per detection (``<kind>:<source>``), locked by every transaction that counts
    or holds its DMs, so concurrent replicas count one after another."""

    __tablename__ = "storm_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StormDm(Base):
    """A person the guard let a detection DM, and when last: the sliding window counts these
    rows. Rows older than the window are deleted as the detection DMs again."""

    __tablename__ = "storm_dms"
    __table_args__ = (
        Index("ix_storm_dms_key_at", "key", "at"),
        Index("ix_storm_dms_key_user", "key", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str] = mapped_column(String(32))
    alert_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Storm(Base):
    """The alerts of one detection held past its limit: one message in the security channel,
    updated in place as more join, and one decision by a responder for all of them."""

    __tablename__ = "storms"
    __table_args__ = (Index("ix_storms_key_status", "key", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    # open | released | discarded | escalated
    status: Mapped[str] = mapped_column(String(16), default="open")
    people: Mapped[int] = mapped_column(Integer, default=0)  # DMed in the window when it opened
    held: Mapped[int] = mapped_column(Integer, default=0)  # alerts held
    max_people: Mapped[int] = mapped_column(Integer)
    window: Mapped[float] = mapped_column(Float)
    # Bumped on every change; the Slack message converges on the newest one.
    version: Mapped[int] = mapped_column(Integer, default=1)
    shown_version: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str | None] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    escalated_alert_id: Mapped[int | None] = mapped_column(BigInteger)
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StormAlert(Base):
    """An alert held in a storm."""

    __tablename__ = "storm_alerts"
    __table_args__ = (Index("ix_storm_alerts_storm_id", "storm_id"),)

    alert_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    storm_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
