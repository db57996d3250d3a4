"""SQLAlchemy models: the database is the single source of truth (state, deadlines, effects)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

# Re-exported: the shared base lived here first, and much code imports it from this module.
from securitybot.store.base import NAMING as NAMING
from securitybot.store.base import Base as Base
from securitybot.store.base import BigId as BigId
from securitybot.store.base import UTCDateTime as UTCDateTime
from securitybot.store.base import utcnow as utcnow


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("source", "dedup_key", name="uq_alerts_source_dedup_key"),
        Index("ix_alerts_status_respond_by", "status", "respond_by"),
        Index("ix_alerts_user_id_status", "user_id", "status"),
        # Grouping looks up recent alerts by what the tool said before Slack resolved the user.
        Index("ix_alerts_user_given_kind", "user_given", "kind"),
        Index("ix_alerts_created_at", "created_at"),
        # A deleted or edited DM message is matched to its alert by channel and ts.
        Index("ix_alerts_dm_channel_dm_ts", "dm_channel", "dm_ts"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(64))
    dedup_key: Mapped[str | None] = mapped_column(String(200))
    user_given: Mapped[str] = mapped_column(String(254))
    user_id: Mapped[str | None] = mapped_column(String(32))
    user_name: Mapped[str | None] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str | None] = mapped_column(String(20))
    escalation_reason: Mapped[str | None] = mapped_column(String(32))
    respond_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The policy is frozen on the alert at ingest so a config change never rewrites history.
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    user_answer: Mapped[str | None] = mapped_column(String(16))
    user_comment: Mapped[str | None] = mapped_column(Text)
    duo_result: Mapped[str | None] = mapped_column(String(32))
    duo_txid: Mapped[str | None] = mapped_column(String(128))
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    dm_channel: Mapped[str | None] = mapped_column(String(32))
    dm_ts: Mapped[str | None] = mapped_column(String(32))
    escalation_channel: Mapped[str | None] = mapped_column(String(32))
    escalation_ts: Mapped[str | None] = mapped_column(String(32))
    # A burst of alerts for one user and kind becomes one conversation: the first alert is the
    # parent; the others follow its outcome.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalation_tier: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # The team's suppression rule that closed this alert as suppressed (never deleted).
    suppression_id: Mapped[int | None] = mapped_column(ForeignKey("suppression_rules.id"))
    # Bumped on every state change; conditional UPDATEs on it make concurrent writers safe.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditLog(Base):
    """Append-only: rows are inserted, never updated or deleted by the application."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_action_created_at", "action", "created_at"),
        Index("ix_audit_log_org_subject", "org", "subject_user"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # No foreign key: the audit log is kept longer than alerts (retention.audit, .alerts), and
    # a row about a purged alert keeps its id.
    alert_id: Mapped[int | None] = mapped_column(BigId, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(80))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    org: Mapped[str | None] = mapped_column(String(64))
    subject_user: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Outbox(Base):
    """Side effects written in the same transaction as the state change that caused them."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    effect: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Makes enqueueing idempotent: the same logical effect is stored once.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped by every claim: a job claimed before may already have reached Slack even though
    # no outcome was recorded (crash, lost commit, expired lease), so its handler checks first.
    claims: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Set just before a handler first calls Slack to post: a later run that sees it looks in
    # the channel for that post before posting again.
    delivery_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Exemption(Base):
    """Accounts whose alerts go straight to the team (service accounts, people on leave)."""

    __tablename__ = "exemptions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(254), unique=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Snooze(Base):
    """After a Duo-confirmed alert, the user may silence the same kind for the same scope."""

    __tablename__ = "snoozes"
    # The source index: purging or erasing a batch of alerts unlinks their snoozes by it.
    __table_args__ = (
        Index("ix_snoozes_lookup", "user_id", "kind", "scope_key"),
        Index("ix_snoozes_source_alert_id", "source_alert_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scope_key: Mapped[str] = mapped_column(String(64))
    source_alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(64))


class SlackReceipt(Base):
    """One row per Slack delivery handled (an event's ``event_id``, a click's ``action_ts``).

    Slack re-sends events it thinks were slow, and a signed request can be replayed within its
    five-minute window; the primary key makes "handle it once" hold across replicas and restarts.
    Rows older than Slack's retry and replay windows are pruned.
    """

    __tablename__ = "slack_receipts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class SeenSignature(Base):
    """One row per HMAC signature the ingest API accepted, so the same signed request cannot be
    replayed within its timestamp window, on any replica. Pruned once the window has passed."""

    __tablename__ = "seen_signatures"

    signature_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


import securitybot.store.aer_models  # noqa: E402
import securitybot.store.slack_people_models  # noqa: F401, E402
from securitybot.store import (  # noqa: F401, E402
    aer_budget_models,
    dashboard_models,
    osquery_models,
    paging_models,
    privacy_models,
    storm_models,
    suppression_models,
)
