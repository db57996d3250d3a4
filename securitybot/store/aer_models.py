"""SQL tables of Anomaly Event Response: hourly counters, baselines, decisions, Slack state.

Raw activity events are never stored: only per (org, user, action, hour) counters, which are
what baselines are learned from and what a restarted process needs to resume a live window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from securitybot.store.base import Base, BigId, UTCDateTime, utcnow


class AerCounter(Base):
    __tablename__ = "aer_counters"
    __table_args__ = (Index("ix_aer_counters_org_bucket", "org", "bucket_start"),)

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    action: Mapped[str] = mapped_column(String(40), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class AerBaseline(Base):
    __tablename__ = "aer_baselines"

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    action: Mapped[str] = mapped_column(String(40), primary_key=True)
    level: Mapped[float] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    p50: Mapped[float] = mapped_column(Float)
    p90: Mapped[float] = mapped_column(Float)
    p99: Mapped[float] = mapped_column(Float)
    mad: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AerProfile(Base):
    """What a user's activity usually looks like, so a restart does not flag everyone as new."""

    __tablename__ = "aer_profiles"

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    asns: Mapped[list[int]] = mapped_column(JSON, default=list)
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    ua_products: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AerUserState(Base):
    """Preceding activity that decide() needs: the last reset and what was reset or escalated."""

    __tablename__ = "aer_user_state"

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reset_sessions: Mapped[list[str]] = mapped_column(JSON, default=list)
    escalated_sessions: Mapped[list[str]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AerAnomaly(Base):
    """Every anomaly and the decision taken, including "do nothing", with the reason."""

    __tablename__ = "aer_anomalies"
    __table_args__ = (
        Index("ix_aer_anomalies_org_user", "org", "user_id"),
        Index("ix_aer_anomalies_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(40))
    rule: Mapped[str] = mapped_column(String(80))
    source: Mapped[str] = mapped_column(String(20))
    # Slack's audit entry id for polled anomalies: polling the same page twice adds nothing.
    source_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    session_id: Mapped[str | None] = mapped_column(String(256))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)
    observed: Mapped[str] = mapped_column(String(200))
    threshold: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    verdict: Mapped[str] = mapped_column(String(24))
    action: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    # What the response orchestrator made of it: reset_done, reset_refused:<error>, ...
    response: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AerNotification(Base):
    """One Slack message per (org, user, anomaly type, recipient) and window, updated in place."""

    __tablename__ = "aer_notifications"
    __table_args__ = (Index("ix_aer_notifications_key", "org", "user_id", "type", "recipient"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=1)
    shown_count: Mapped[int] = mapped_column(Integer, default=0)
    last_reason: Mapped[str] = mapped_column(Text, default="")
    # The same reason as a message (securitybot.aer.reason), shown in the reader's language;
    # None on rows written before it existed (their English is shown).
    last_reason_i18n: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    channel: Mapped[str | None] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AerSettingsSnapshot(Base):
    """The last effective AER settings seen per org, to audit changes made in config.yaml."""

    __tablename__ = "aer_settings_snapshots"

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AerPollerState(Base):
    """Where the Slack Audit Logs poller is, so a restart neither skips nor replays pages."""

    __tablename__ = "aer_poller_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    oldest: Mapped[int] = mapped_column(BigInteger, default=0)
    # Newest date_create seen while paging; becomes ``oldest`` once the last page is done.
    high_water: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AerVersion(Base):
    """A counter per piece of shared state (``baselines``, ``tor_list``), bumped on each change.

    Every process polls these few rows (and listens for PostgreSQL NOTIFYs) so a refresh made by
    the CLI or another replica takes effect everywhere within seconds, on SQLite too.
    """

    __tablename__ = "aer_versions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AerThreatList(Base):
    """A downloaded indicator list (the Tor exits), swapped in whole by one row update."""

    __tablename__ = "aer_threat_lists"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    entries: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(Text, default="")
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AerSession(Base):
    """A session's first user agent and client, so a restart still sees a later hijack."""

    __tablename__ = "aer_sessions"
    __table_args__ = (Index("ix_aer_sessions_updated_at", "updated_at"),)

    org: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    user_agent: Mapped[str | None] = mapped_column(Text)
    client: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AerPartition(Base):
    """A JetStream partition: which worker holds it until when, and what is committed.

    ``last_seq`` is the stream sequence of the last message whose effects are committed; it
    moves in the same transaction as the counters and decisions, so a redelivered message is
    recognised and skipped, and a worker whose lease was taken cannot commit (fencing).
    """

    __tablename__ = "aer_partitions"

    stream: Mapped[str] = mapped_column(String(32), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class AerWorker(Base):
    """A live ``securitybot aer worker`` (heartbeat), so partitions are shared out evenly."""

    __tablename__ = "aer_workers"

    stream: Mapped[str] = mapped_column(String(32), primary_key=True)
    worker: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AerDeadLetter(Base):
    """A JetStream message a worker could not act on (bad or missing MAC, not decodable, not
    valid): kept with the reason for ``securitybot aer dead-letters list|replay``."""

    __tablename__ = "aer_dead_letters"
    __table_args__ = (
        UniqueConstraint("stream", "seq", name="uq_aer_dead_letters_stream_seq"),
        Index("ix_aer_dead_letters_reason", "reason"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stream: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(BigInteger)
    partition: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    msg_id: Mapped[str | None] = mapped_column(String(255))
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when JetStream stored it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    replayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replayed_by: Mapped[str | None] = mapped_column(String(255))
