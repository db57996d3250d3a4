"""Pages: what was sent to the on-call's pager (PagerDuty, Opsgenie) for which alerts.

A page is keyed by its vendor and dedup key (``securitybot-<alert id>``, or a storm's
``securitybot-storm-<key>``), so an alert, or a whole storm, opens at most one incident per
vendor; ``paged_alerts`` says which page each alert belongs to. The page's status follows the
lifecycle steps delivered (and what PagerDuty's webhooks report), so a step is sent only while
it still means something, and the dashboard can show it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from securitybot.store.base import Base, UTCDateTime, utcnow


class Page(Base):
    __tablename__ = "pages"
    __table_args__ = (Index("ix_pages_status_created_at", "status", "created_at"),)

    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)  # the opener
    group_key: Mapped[str | None] = mapped_column(String(200))
    # queued -> triggered -> acknowledged -> resolved (a step may be skipped).
    status: Mapped[str] = mapped_column(String(16), default="queued")
    # Who acknowledged or resolved it in the pager itself (from PagerDuty's webhooks).
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    # Opsgenie: the last audit row posted as a note (each timeline step is noted once).
    noted_through: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PagedAlert(Base):
    __tablename__ = "paged_alerts"

    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PagerDutyWebhook(Base):
    """One row per PagerDuty webhook event handled (``event.id``): a retried or replayed
    delivery is answered and changes nothing. Pruned after the replay window."""

    __tablename__ = "pagerduty_webhooks"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
