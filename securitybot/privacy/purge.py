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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text

from securitybot import metrics
from securitybot.privacy.lease import Lease
from securitybot.privacy.purge_targets import targets
from securitybot.privacy.retention import Policy
from securitybot.store.db import Database

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


@dataclass
class Pacing:
    """How big the next batch is and how long to rest after one.

    A batch that held the write transaction longer than ``batch_time`` halves the next (down
    to ``MIN_BATCH``, or ``batch_size`` if smaller), unless halving did not help: when the
    halved batch held it nearly as long (three quarters or more), the time is the
    transaction's own (a commit, a busy machine), not the rows', and the size goes back up
    rather than spiralling down to a crawl. A batch under half of ``batch_time`` grows the
    next by half, up to ``batch_size``. After each batch the purge rests so that it works at
    most ``share`` of the time, and at least ``pause``."""

    batch_size: int
    batch_time: float = 0.05
    share: float = 1.0
    pause: float = 0.0
    size: int = 0
    # The size before the last halving and how long that bigger batch held the transaction.
    halved_from: int = 0
    held_before: float = 0.0

    def __post_init__(self) -> None:
        self.size = self.size or self.batch_size

    def after(self, held: float, took: float) -> float:
        """Note a batch that held the write transaction ``held`` s (``took`` s in all); returns
        the rest before the next one."""
        if held > self.batch_time:
            if self.halved_from and held >= 0.75 * self.held_before:
                self.size, self.halved_from = self.halved_from, 0  # halving did not help
            else:
                self.halved_from, self.held_before = self.size, held
                self.size = max(min(MIN_BATCH, self.batch_size), self.size // 2)
        else:
            self.halved_from = 0
            if held < self.batch_time / 2:
                self.size = min(self.batch_size, self.size + max(1, self.size // 2))
        return max(self.pause, took * (1 - self.share) / self.share)


MIN_BATCH = 20


def run(db: Database, policy: Policy, *, batch_size: int, pause: float = 0.0,
        share: float = 1.0, batch_time: float = 0.05, dry_run: bool = False,
        lease: Lease | None = None, sleep: Callable[[float], None] = time.sleep,
        pacing: Pacing | None = None) -> Report:  # fmt: skip
    """Purge (or with ``dry_run`` count) what ``policy`` makes eligible, one batch at a time.

    Each batch reads its window in a read transaction (no write lock: on SQLite, ingest keeps
    writing meanwhile), then deletes in one short write transaction that re-checks eligibility;
    between batches it rests (``sleep``, outside any transaction) per :class:`Pacing`. On
    SQLite it then checkpoints the write-ahead log itself, outside the write lock, so that the
    commit of an ingest request never pays for copying the purge's pages back."""
    report = Report(dry_run=dry_run, cutoffs=dict(policy.cutoffs))
    pacing = pacing or Pacing(batch_size, batch_time=batch_time, share=share, pause=pause)
    for t in targets(policy, lock=db.is_postgres):
        if dry_run and t.count is not None:
            with db.read() as session:
                report.add(t.category, t.table, t.count(session))
            continue
        after: Any = None
        while True:
            started = time.monotonic()
            with db.read() as session:
                keys, after = t.select(session, after, pacing.size if not dry_run else batch_size)
            n = len(keys)
            held = 0.0
            if not dry_run and keys:
                locked = time.monotonic()
                with db.write() as session:
                    if db.is_postgres:
                        # Its commit need not wait for the disk: a batch lost in a crash is
                        # deleted again by the next run. The hot path's commits queue behind
                        # every flush of the write-ahead log, so this is one fewer each batch.
                        session.execute(text("SET LOCAL synchronous_commit TO off"))
                    n = t.delete(session, keys)
                held = time.monotonic() - locked
                if n:
                    metrics.RETENTION_PURGED.labels(t.category).inc(n)
                if db.is_sqlite:
                    _checkpoint(db)
            report.add(t.category, t.table, n)
            if after is None or (after is True and not n):
                break
            if not dry_run:
                if lease is not None and not lease.renew_if_due():
                    logger.warning("purge: the lease was taken over; stopping after %s", t.table)
                    report.complete = False
                    return report
                sleep(pacing.after(held, time.monotonic() - started))
    return report


def _checkpoint(db: Database) -> None:
    """Copy the write-ahead log back into the database file (PASSIVE: it waits for nobody and
    blocks no writer), so the log stays short and SQLite's automatic checkpoint, which runs in
    whichever connection commits past 1,000 pages, finds nothing left to do."""
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
