"""How the purge paces itself, on both stores: batches bounded by ``retention.batch_size`` that
shrink when one holds the write transaction longer than ``retention.batch_time``, deleted by a
primary-key range (no statement carries the batch's ids), and a rest between batches in which
the purge holds no connection, so any other writer commits at once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import event, func, select

from securitybot.config import RetentionConfig
from securitybot.privacy import purge
from securitybot.privacy.job import current_policy
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, Outbox
from tests.privacy.seed import alert

CONFIG = RetentionConfig.model_validate({"alerts": "400d", "audit": "400d", "outbox": "14d"})


class Statements:
    """Every statement the engine runs while in use: (SQL, its parameters)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.seen: list[tuple[str, Any]] = []

    def _note(self, _c: object, _cur: object, sql: str, params: Any, *_: object) -> None:
        self.seen.append((" ".join(sql.split()), params))

    def __enter__(self) -> Statements:
        event.listen(self.db.engine, "before_cursor_execute", self._note)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.db.engine, "before_cursor_execute", self._note)

    def windows(self, table: str) -> list[int]:
        """The LIMIT of each window read of ``table`` (its batch size at the time)."""
        head = f"SELECT {table}.id, {table}.created_at"
        return [_limit(p) for sql, p in self.seen if sql.startswith(head)]


def _limit(params: Any) -> int:
    # The window's parameters: the cursor, then the LIMIT (SQLite adds OFFSET 0 after it).
    values = list(params.values()) if isinstance(params, dict) else list(params)
    return int(values[1])


def _count(db: Database, model: type) -> int:
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


def test_each_batch_is_a_primary_key_range_of_at_most_batch_size_rows(db: Database) -> None:
    for _ in range(23):
        alert(db, age_days=500, jobs=1, audit=1)
    with Statements(db) as st:
        report = purge.run(db, current_policy(db, CONFIG), batch_size=5, batch_time=60)
    assert report.tables == {"outbox": 23, "alerts": 23, "aer_anomalies": 0, "audit_log": 23}
    assert _count(db, Alert) == _count(db, Outbox) == _count(db, AuditLog) == 0
    # 23 rows: five windows (the last short), then an empty one ends the scan.
    assert st.windows("alerts") == [5] * 6
    deletes = [(sql, p) for sql, p in st.seen if sql.startswith("DELETE FROM alerts")]
    assert len(deletes) == 5
    for sql, params in deletes:
        # A range of ids and the eligibility conditions: a handful of parameters, not the ids.
        assert "alerts.id > " in sql and "alerts.id <= " in sql
        assert len(params) < 10, sql


def test_a_batch_that_holds_the_write_transaction_too_long_halves_the_next() -> None:
    # 1 ms a row: halving helps each time, until a batch fits in batch_time (50 rows, 50 ms).
    pacing = purge.Pacing(400, batch_time=0.05)
    sizes = []
    for _ in range(6):
        pacing.after(held=0.001 * pacing.size, took=0.001 * pacing.size)
        sizes.append(pacing.size)
    assert sizes == [200, 100, 50, 50, 50, 50]
    # 10 ms a row: not below the floor.
    slow = purge.Pacing(400, batch_time=0.05)
    for _ in range(12):
        slow.after(held=0.01 * slow.size, took=0.01 * slow.size)
        assert slow.size >= purge.MIN_BATCH
    assert slow.size <= 2 * purge.MIN_BATCH
    # Under half of batch_time: grows back by half each time, never past batch_size.
    pacing.size = 20
    sizes = []
    for _ in range(8):
        pacing.after(held=0.001, took=0.001)
        sizes.append(pacing.size)
    assert sizes == [30, 45, 67, 100, 150, 225, 337, 400]
    pacing.after(held=0.04, took=0.04)  # between half and all of batch_time: kept
    assert pacing.size == 400


def test_when_halving_does_not_help_the_batch_goes_back_up_instead_of_crawling() -> None:
    # A busy machine: every commit takes 80 ms whatever the batch holds.
    pacing = purge.Pacing(500, batch_time=0.05)
    sizes = []
    for _ in range(6):
        pacing.after(held=0.08, took=0.08)
        sizes.append(pacing.size)
    assert sizes == [250, 500, 250, 500, 250, 500]  # never below half of batch_size


def test_the_purge_reads_each_window_at_the_size_pacing_chose(db: Database) -> None:
    for _ in range(30):
        alert(db, age_days=500, jobs=0, audit=0)
    holds: list[float] = []

    class Scripted(purge.Pacing):
        sizes = iter([4, 16, 2])

        def after(self, held: float, took: float) -> float:
            holds.append(held)
            self.size = next(self.sizes)
            return 0.0

    with Statements(db) as st:
        report = purge.run(db, current_policy(db, CONFIG), batch_size=10,
                           pacing=Scripted(10))  # fmt: skip
    assert report.tables["alerts"] == 30
    # 10 + 4 + 16 = 30 rows; the window of 2 finds nothing left and ends the scan.
    assert st.windows("alerts") == [10, 4, 16, 2]
    assert len(holds) == 3 and all(h > 0 for h in holds)  # each delete's transaction, timed


def test_the_purge_rests_between_batches_holding_no_connection(db: Database) -> None:
    for _ in range(9):
        alert(db, age_days=500, jobs=0, audit=0)
    rests: list[float] = []
    writes_done: list[bool] = []
    pool: Any = db.engine.pool

    def sleep(seconds: float) -> None:
        rests.append(seconds)
        if hasattr(pool, "checkedout"):
            assert pool.checkedout() == 0  # no transaction open, no lock held
        # Another writer (ingest, a DM's outcome) commits at once, from another thread.
        t = threading.Thread(target=lambda: writes_done.append(_write(db)))
        t.start()
        t.join(timeout=5)
        assert not t.is_alive(), "a write waited on the purge during its rest"

    report = purge.run(db, current_policy(db, CONFIG), batch_size=2, share=0.25,
                       pause=0.001, sleep=sleep)  # fmt: skip
    assert report.tables["alerts"] == 9
    # Five batches of alerts (2+2+2+2+1), each followed by a rest of at least `pause` (and three
    # times the batch's own time, share 0.25) before the next window is read.
    assert len(rests) == 5 and all(r >= 0.001 for r in rests)
    assert writes_done and all(writes_done)
    assert _count(db, Alert) == 0


def _write(db: Database) -> bool:
    with db.write() as s:
        s.add(AuditLog(actor="ingest", action="created"))
    return True


@pytest.mark.parametrize(("held", "took", "share", "pause", "rest"), [
    (0.01, 0.01, 0.25, 0.0, 0.03),  # works a quarter of the time
    (0.01, 0.01, 1.0, 0.02, 0.02),  # share 1: only the minimum pause
    (0.0, 0.004, 0.5, 0.001, 0.004),
])  # fmt: skip
def test_the_rest_keeps_the_purge_to_its_share_of_the_time(
    held: float, took: float, share: float, pause: float, rest: float
) -> None:
    pacing = purge.Pacing(500, share=share, pause=pause)
    assert pacing.after(held, took) == pytest.approx(rest)


def test_deletes_walk_the_primary_key_not_an_index_on_status_or_age(db: Database) -> None:
    """The conditions beside a batch's id range must not steer the planner to an index on them
    (status, created_at): SQLite did, and every batch of 500 scanned all the old rows."""
    for _ in range(6):
        alert(db, age_days=500, jobs=2, audit=1)
    with Statements(db) as st:
        purge.run(db, current_policy(db, CONFIG), batch_size=3)
    deletes = [(sql, p) for sql, p in st.seen
               if sql.startswith(("DELETE FROM alerts", "DELETE FROM outbox WHERE outbox.id",
                                  "DELETE FROM audit_log"))]  # fmt: skip
    assert {sql.split()[2] for sql, _ in deletes} == {"alerts", "outbox", "audit_log"}
    explain = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
    with db.engine.connect() as conn:
        for sql, params in deletes:
            plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(explain + sql, params))
            for index in ("ix_outbox_status_next_attempt_at", "ix_alerts_status_respond_by",
                          "ix_alerts_created_at", "ix_audit_log_action_created_at"):  # fmt: skip
                assert index not in plan, (sql, plan)
            if db.is_sqlite:
                assert "INTEGER PRIMARY KEY" in plan, (sql, plan)
