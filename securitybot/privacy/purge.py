"""The purge: the retention policy applied to the store in small batches.

Each batch is one short write transaction that selects up to ``retention.batch_size`` eligible
rows after a keyset cursor and deletes them (re-checking eligibility in the same transaction),
so ingest and DMs wait at most one small batch; after each batch the purge pauses so that it
works at most ``retention.share`` of the time (a quarter by default), leaving the database (on
SQLite, the single writer) and the CPU to the hot path the rest of it. Open alerts and
whatever ``retention.hold`` names are skipped, and so are their audit rows and outbox jobs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from securitybot import metrics
from securitybot.privacy.lease import Lease
from securitybot.privacy.retention import FINISHED, FINISHED_JOBS, Hold, Policy, alert_eligible
from securitybot.store.aer_budget_models import AerHeldReset
from securitybot.store.aer_models import (
    AerAnomaly,
    AerCounter,
    AerNotification,
    AerProfile,
    AerSession,
    AerUserState,
)
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, Outbox, Snooze
from securitybot.store.paging_models import Page, PagedAlert

logger = logging.getLogger(__name__)


@dataclass
class Report:
    """Rows purged (or, in a dry run, that would be) per category and per table."""

    dry_run: bool
    categories: dict[str, int] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    cutoffs: dict[str, datetime] = field(default_factory=dict)
    complete: bool = True  # False: the lease was lost midway (another replica took over)

    def add(self, category: str, table: str, n: int) -> None:
        self.categories[category] = self.categories.get(category, 0) + n
        self.tables[table] = self.tables.get(table, 0) + n


# A target selects one batch after a cursor: (rows to delete, the next cursor or None at the end).
Select = Callable[[Session, Any, int], tuple[list[Any], Any]]
Delete = Callable[[Session, list[Any]], int]


@dataclass
class Target:
    category: str
    table: str
    select: Select
    delete: Delete
    # Tables without a cursor (every selected row goes) count a dry run in one statement.
    count: Callable[[Session], int] | None = None


def _kept_alert_ids(session: Session, hold: Hold, alert_ids: Sequence[int], *,
                    open_too: bool) -> set[int]:  # fmt: skip
    """Of ``alert_ids``, those a hold names (and with ``open_too`` those still open): their
    rows are kept."""
    wanted = sorted({a for a in alert_ids if a is not None})
    if not wanted:
        return set()
    kept = set(wanted) & hold.alerts
    for aid, kind, status, given, uid in session.execute(
        select(Alert.id, Alert.kind, Alert.status, Alert.user_given, Alert.user_id)
        .where(Alert.id.in_(wanted))
    ):  # fmt: skip
        if (open_too and status not in FINISHED) or hold.holds_alert(aid, kind, given, uid):
            kept.add(aid)
    return kept


def _window(session: Session, model: Any, cols: Sequence[Any], after: int | None, n: int,
            cutoff: datetime) -> tuple[list[Any], int | None]:  # fmt: skip
    """The next ``n`` rows by primary key after ``after`` (an index range, however many rows
    are eligible, so every batch costs the same), and the cursor; None once a whole window is
    younger than the cut-off: rows are only ever inserted with ``created_at`` = now, so ids
    grow with time and the rest of the table is younger still (a few seconds of skew between
    concurrent writers do not matter: a window is 500 rows)."""
    rows = session.execute(
        select(model.id, model.created_at, *cols).where(model.id > (after or 0))
        .order_by(model.id).limit(n)
    ).all()  # fmt: skip
    if not rows or min(r.created_at for r in rows) >= cutoff:
        return [], None
    return list(rows), rows[-1].id


def _alerts(policy: Policy) -> Target:
    cutoff = policy.cutoffs["alerts"]
    hold = policy.hold

    def eligible() -> list[ColumnElement[bool]]:
        return [Alert.status.in_(sorted(FINISHED)), Alert.created_at < cutoff,
                Alert.updated_at < cutoff]  # fmt: skip

    def sel(session: Session, after: int | None, n: int) -> tuple[list[int], int | None]:
        rows, cursor = _window(session, Alert, (Alert.kind, Alert.status, Alert.updated_at,
                               Alert.user_given, Alert.user_id), after, n, cutoff)  # fmt: skip
        ids = [
            r.id for r in rows
            if alert_eligible(r.status, max(r.created_at, r.updated_at), cutoff)
            and not hold.holds_alert(r.id, r.kind, r.user_given, r.user_id)
        ]  # fmt: skip
        if not ids:
            return [], cursor
        # A parent whose grouped child is still open stays until the child is finished.
        busy = set(session.scalars(
            select(Alert.parent_id).where(Alert.parent_id.in_(ids),
                                          Alert.status.not_in(sorted(FINISHED)))
        ))  # fmt: skip
        return [i for i in ids if i not in busy], cursor

    def dele(session: Session, ids: list[int]) -> int:
        # Re-checked in the deleting transaction: nothing selected may have changed since.
        ids = list(session.scalars(select(Alert.id).where(Alert.id.in_(ids), *eligible())))
        if not ids:
            return 0
        session.execute(update(Alert).where(Alert.parent_id.in_(ids), Alert.id.not_in(ids))
                        .values(parent_id=None))  # fmt: skip
        session.execute(update(Snooze).where(Snooze.source_alert_id.in_(ids))
                        .values(source_alert_id=None))  # fmt: skip
        session.execute(delete(PagedAlert).where(PagedAlert.alert_id.in_(ids)))
        session.execute(delete(Page).where(Page.alert_id.in_(ids)))
        session.execute(delete(Outbox).where(Outbox.alert_id.in_(ids)))
        return _rows(session.execute(delete(Alert).where(Alert.id.in_(ids))))

    return Target("alerts", "alerts", sel, dele)


def _anomalies(policy: Policy) -> Target:
    """Anomalies and the decisions taken on them are kept as long as alerts."""
    cutoff = policy.cutoffs["alerts"]
    people = sorted(policy.hold.people)

    def sel(session: Session, after: int | None, n: int) -> tuple[list[int], int | None]:
        window, cursor = _window(session, AerAnomaly, (AerAnomaly.user_id,), after, n, cutoff)
        rows = [r for r in window if r.created_at < cutoff]
        if not rows:
            return [], cursor
        held = set(session.scalars(
            select(AerHeldReset.anomaly_id).where(
                AerHeldReset.anomaly_id.in_([r.id for r in rows]), AerHeldReset.status == "held")
        ))  # fmt: skip
        ids = [r.id for r in rows if r.id not in held and r.user_id not in people]
        return ids, cursor

    def dele(session: Session, ids: list[int]) -> int:
        stmt = delete(AerAnomaly).where(AerAnomaly.id.in_(ids), AerAnomaly.created_at < cutoff)
        return _rows(session.execute(stmt))

    return Target("alerts", "aer_anomalies", sel, dele)


def _audit(policy: Policy) -> Target:
    cutoff = policy.cutoffs["audit"]
    hold = policy.hold

    def sel(session: Session, after: int | None, n: int) -> tuple[list[int], int | None]:
        window, cursor = _window(session, AuditLog, (AuditLog.alert_id, AuditLog.actor,
                                 AuditLog.subject_user), after, n, cutoff)  # fmt: skip
        rows = [r for r in window if r.created_at < cutoff]
        kept = _kept_alert_ids(session, hold, [r.alert_id for r in rows], open_too=True)
        ids = [
            r.id for r in rows
            if r.alert_id not in kept
            and not hold.holds_person(r.actor) and not hold.holds_person(r.subject_user)
        ]  # fmt: skip
        return ids, cursor

    def dele(session: Session, ids: list[int]) -> int:
        stmt = delete(AuditLog).where(AuditLog.id.in_(ids), AuditLog.created_at < cutoff)
        return _rows(session.execute(stmt))

    return Target("audit", "audit_log", sel, dele)


def _outbox(policy: Policy) -> Target:
    cutoff = policy.cutoffs["outbox"]
    hold = policy.hold

    def eligible() -> list[ColumnElement[bool]]:
        return [Outbox.status.in_(sorted(FINISHED_JOBS)),
                func.coalesce(Outbox.done_at, Outbox.created_at) < cutoff]  # fmt: skip

    def sel(session: Session, after: int | None, n: int) -> tuple[list[int], int | None]:
        window, cursor = _window(session, Outbox, (Outbox.alert_id, Outbox.status,
                                 Outbox.done_at), after, n, cutoff)  # fmt: skip
        rows = [r for r in window
                if r.status in FINISHED_JOBS and (r.done_at or r.created_at) < cutoff]  # fmt: skip
        # Finished jobs of an open alert may go; those of a held alert stay.
        kept = _kept_alert_ids(session, hold, [r.alert_id for r in rows], open_too=False)
        ids = [r.id for r in rows if r.alert_id is None or r.alert_id not in kept]
        return ids, cursor

    def dele(session: Session, ids: list[int]) -> int:
        return _rows(session.execute(delete(Outbox).where(Outbox.id.in_(ids), *eligible())))

    return Target("outbox", "outbox", sel, dele)


def _keyed(category: str, table: Table, age: Any, cutoff: datetime, people: list[str]) -> Target:
    """Tables keyed by (org, user, ...) without a surrogate id: every selected row goes (the
    hold is in the WHERE), so each batch simply takes the next ``n`` eligible keys."""
    pk = list(table.primary_key.columns)
    where = [age < cutoff]
    if people:
        where.append(table.c.user_id.not_in(people))

    def sel(session: Session, after: Any, n: int) -> tuple[list[Any], Any]:
        keys = [tuple(r) for r in session.execute(select(*pk).where(*where).limit(n))]
        return keys, (True if keys else None)

    def dele(session: Session, keys: list[Any]) -> int:
        stmt = delete(table).where(tuple_(*pk).in_(keys), *where)
        return _rows(session.execute(stmt))

    def count(session: Session) -> int:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)

    return Target(category, table.name, sel, dele, count)


def targets(policy: Policy) -> list[Target]:
    out: list[Target] = []
    c = policy.cutoffs
    if "outbox" in c:  # first: the cheapest and the most rows (two or more per alert)
        out.append(_outbox(policy))
    if "alerts" in c:
        out += [_alerts(policy), _anomalies(policy)]
    if "audit" in c:
        out.append(_audit(policy))
    if "aer" in c:
        people = sorted(policy.hold.people)
        cut = c["aer"]
        for model, age in ((AerCounter, AerCounter.bucket_start),
                           (AerProfile, AerProfile.updated_at),
                           (AerUserState, AerUserState.updated_at),
                           (AerSession, AerSession.updated_at),
                           (AerNotification, AerNotification.last_at)):  # fmt: skip
            out.append(_keyed("aer", model.__table__, age, cut, people))  # type: ignore[arg-type]
    return out


def run(db: Database, policy: Policy, *, batch_size: int, pause: float = 0.0,
        share: float = 1.0, dry_run: bool = False, lease: Lease | None = None
        ) -> Report:  # fmt: skip
    """Purge (or with ``dry_run`` count) what ``policy`` makes eligible, one batch at a time."""
    report = Report(dry_run=dry_run, cutoffs=dict(policy.cutoffs))
    for t in targets(policy):
        if dry_run and t.count is not None:
            with db.read() as session:
                report.add(t.category, t.table, t.count(session))
            continue
        after: Any = None
        while True:
            started = time.monotonic()
            if dry_run:
                with db.read() as session:
                    keys, after = t.select(session, after, batch_size)
                n = len(keys)
            else:
                with db.write() as session:
                    keys, after = t.select(session, after, batch_size)
                    n = t.delete(session, keys) if keys else 0
                if n:
                    metrics.RETENTION_PURGED.labels(t.category).inc(n)
            report.add(t.category, t.table, n)
            if after is None or (after is True and not n):
                break
            if not dry_run:
                if lease is not None and not lease.renew_if_due():
                    logger.warning("purge: the lease was taken over; stopping after %s", t.table)
                    report.complete = False
                    return report
                # Work at most `share` of the time, whatever a batch costs on this machine.
                took = time.monotonic() - started
                time.sleep(max(pause, took * (1 - share) / share))
    return report


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
