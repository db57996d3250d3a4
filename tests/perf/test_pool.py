"""PostgreSQL connections: reused on the hot path without a ping each, replaced when dead."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event, text

from securitybot.store import db as db_module
from securitybot.store.db import Database
from tests.dbs import postgres_base_url, postgres_schema_url


@pytest.fixture
def pg() -> Iterator[Database]:
    with postgres_schema_url() as url:
        database = Database.from_url(url)
        yield database
        database.dispose()


def _count(engine: sa.Engine, name: str) -> list[Any]:
    seen: list[Any] = []
    event.listen(engine, name, lambda *a: seen.append(a))
    return seen


def test_busy_transactions_reuse_one_connection_and_send_no_ping(
    pg: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    connects = _count(pg.engine, "connect")
    pings: list[Any] = []
    real_ping = pg.engine.dialect.do_ping
    monkeypatch.setattr(pg.engine.dialect, "do_ping", lambda c: pings.append(c) or real_ping(c))
    statements: list[str] = []
    event.listen(pg.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    for _ in range(50):
        with pg.write() as session:
            session.execute(text("SELECT 2"))
    assert len(connects) == 1
    assert pings == []  # SQLAlchemy's pool_pre_ping would ping before every transaction
    # Only our statements went out: no "SELECT 1" ping ahead of each transaction.
    assert [s for s in statements if s != "SELECT 2"] == []


def test_an_idle_connection_the_server_killed_is_replaced_before_use(
    pg: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pg.write() as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = sa.create_engine("postgresql+psycopg://" + postgres_base_url().split("://", 1)[1])
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
    admin.dispose()
    monkeypatch.setattr(db_module, "IDLE_PING_SECONDS", 0.0)  # as if it had idled for a while
    with pg.write() as session:
        assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
