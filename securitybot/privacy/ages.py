"""``securitybot_retention_oldest_row_age_seconds{category}``: how old the oldest row of each
retention category is, read from the database (any replica reports the truth, whichever one
ran the purge). A row older than its ``retention.<category>`` means the purge is behind, held
or off. Cached for a few minutes: a scrape must not scan big tables."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from securitybot.privacy.retention import CATEGORIES, FINISHED_JOBS
from securitybot.store.aer_models import AerCounter
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, Outbox, utcnow

CACHE_SECONDS = 300.0


def _at(value: Any) -> datetime | None:
    if isinstance(value, str):  # SQLite aggregate results skip the column type
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value if isinstance(value, datetime) else None


def oldest(session: Session) -> dict[str, datetime | None]:
    """The oldest row of each category (ids grow with time: the lowest id is the oldest)."""
    first_audit = select(func.min(AuditLog.id)).scalar_subquery()
    first_job = (select(func.min(Outbox.id))
                 .where(Outbox.status.in_(sorted(FINISHED_JOBS))).scalar_subquery())  # fmt: skip
    job_at = func.coalesce(Outbox.done_at, Outbox.created_at)
    return {
        "alerts": _at(session.scalar(select(func.min(Alert.created_at)))),
        "audit": _at(session.scalar(select(AuditLog.created_at).where(AuditLog.id == first_audit))),
        "outbox": _at(session.scalar(select(job_at).where(Outbox.id == first_job))),
        "aer": _at(session.scalar(select(func.min(AerCounter.bucket_start)))),
    }


class OldestRowCollector(Collector):
    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, datetime | None]] | None = None

    def _values(self) -> dict[str, datetime | None]:
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > CACHE_SECONDS:
                with self.db.read() as session:
                    self._cached = (time.monotonic(), oldest(session))
            return self._cached[1]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "securitybot_retention_oldest_row_age_seconds",
            "Age of the oldest row per retention category (0 when there is none)",
            labels=["category"],
        )
        now = utcnow()
        values = self._values()
        for category in CATEGORIES:
            at = values.get(category)
            age = 0.0 if at is None else max(0.0, (now - at).total_seconds())
            family.add_metric([category], age)
        yield family
