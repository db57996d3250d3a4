"""The purge's deletes on PostgreSQL commit without waiting for the disk (``SET LOCAL
synchronous_commit TO off``: a batch lost in a crash is deleted again by the next run), for the
purge's own transactions only: the pooled connection goes back with durable commits, which every
other write (the hot path) needs. SQLite has no such setting and is sent none."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from securitybot.privacy import purge
from securitybot.privacy.job import current_policy
from securitybot.store.db import Database
from tests.privacy.seed import alert
from tests.privacy.test_purge_batches import CONFIG, Statements


def _show(dbapi_connection: Any) -> str:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SHOW synchronous_commit")
        return str(cursor.fetchone()[0])
    finally:
        cursor.close()


class DeleteSettings:
    """synchronous_commit as each DELETE of the purge is sent, asked on its own connection
    (inside its transaction), and the connections those DELETEs went out on."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.seen: list[tuple[str, str]] = []
        self.connections: list[Any] = []

    def _note(self, conn: Any, _cur: object, sql: str, *_: object) -> None:
        if not sql.lstrip().upper().startswith("DELETE"):
            return
        raw = conn.connection.dbapi_connection
        self.seen.append((sql.split()[2], _show(raw)))
        if all(raw is not c for c in self.connections):
            self.connections.append(raw)

    def __enter__(self) -> DeleteSettings:
        event.listen(self.db.engine, "before_cursor_execute", self._note)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.db.engine, "before_cursor_execute", self._note)


def _old_alerts(db: Database, n: int) -> None:
    for _ in range(n):
        alert(db, age_days=500, jobs=1, audit=1)


@pytest.mark.parametrize("backend", ["postgres"])  # PostgreSQL's setting: on it alone
def test_on_postgres_the_purges_deletes_commit_asynchronously_and_only_they(
    db: Database,
) -> None:
    assert db.is_postgres
    _old_alerts(db, 7)
    with DeleteSettings(db) as deletes:
        report = purge.run(db, current_policy(db, CONFIG), batch_size=3, batch_time=60)
    assert report.tables["alerts"] == 7
    assert {table for table, _ in deletes.seen} >= {"alerts", "audit_log", "outbox"}
    # Every batch's transaction deletes with asynchronous commit...
    assert [setting for _, setting in deletes.seen] == ["off"] * len(deletes.seen)
    # ...and only that transaction: the connections it ran on are back in the pool as they
    # were (SET LOCAL ends with the transaction; a plain SET would stay with the connection).
    assert deletes.connections
    for raw in deletes.connections:
        assert _show(raw) == "on"
        raw.rollback()  # SHOW began a transaction of its own on the idle connection
    with db.write() as session:  # the next writer from the pool commits durably
        assert session.connection().exec_driver_sql("SHOW synchronous_commit").scalar() == "on"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_on_sqlite_no_such_statement_is_sent(db: Database) -> None:
    assert db.is_sqlite
    _old_alerts(db, 4)
    with Statements(db) as st:
        report = purge.run(db, current_policy(db, CONFIG), batch_size=3, batch_time=60)
    assert report.tables["alerts"] == 4
    assert any(sql.startswith("DELETE FROM alerts") for sql, _ in st.seen)
    assert not [sql for sql, _ in st.seen if "synchronous_commit" in sql.lower()]
