"""The group join (``dm_batch``'s query for the alerts a batch may join) reads only the
people's own alerts, even before PostgreSQL has statistics.

With ``user_id = … OR user_given = …`` the planner of a table nobody had ANALYZEd yet (a burst
into a new deployment) chose the parent_id index and filtered every top-level alert.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from securitybot.flows.dm_batch import _POSSIBLE_PARENTS
from securitybot.store.db import Database, migrate
from securitybot.store.models import Alert, utcnow
from tests.dbs import postgres_schema_url


@pytest.fixture
def pg() -> Iterator[Database]:
    with postgres_schema_url() as url:
        database = Database.from_url(url)
        migrate(database.engine)
        yield database
        database.dispose()


def _add(db: Database, alerts: list[dict[str, Any]]) -> None:
    """Top-level alerts of one kind, ids from 1 in list order (``created_at`` as updated)."""
    with db.write() as session:
        session.add_all(
            Alert(
                kind="sensitive_command",
                severity="high",
                source="t",
                dedup_key=f"k{i}",
                title="t",
                updated_at=fields["created_at"],
                **fields,
            )
            for i, fields in enumerate(alerts)
        )


def test_the_group_join_uses_the_person_indexes_without_statistics(pg: Database) -> None:
    now = utcnow()
    _add(pg, [{"user_given": f"u{i % 200}@example.com", "status": "new", "created_at": now}
              for i in range(2000)])  # fmt: skip
    with pg.write() as session:
        values = {"kinds": ["sensitive_command"], "givens": ["u199@example.com"],
                  "users": ["UNOBODY"], "batch": [1999], "below": 1999,
                  "since": now - timedelta(seconds=300)}  # fmt: skip
        state = _POSSIBLE_PARENTS.compile(pg.engine).construct_expanded_state(values)
        explain = session.connection().exec_driver_sql(
            "EXPLAIN ANALYZE " + state.statement, state.parameters
        )
        plan = "\n".join(r[0] for r in explain)
        parents = sorted(session.scalars(_POSSIBLE_PARENTS, values))
    assert parents == list(range(200, 1999, 200))  # the person's open alerts (ids from 1)
    assert "ix_alerts_user_given_kind" in plan, plan
    assert "ix_alerts_parent_id" not in plan, plan


def test_on_sqlite_the_group_join_reads_the_persons_alerts_not_every_top_level_one(
    tmp_path: Path,
) -> None:
    # SQLite (never ANALYZEd) led the second lookup with ``parent_id IS NULL``, true of every
    # top-level alert: on a store of 250,000 finished ones each DM batch read them all, and
    # ingest-to-DM at 100/s went from 64 ms to 863 ms at p50.
    db = Database.from_url(f"sqlite:///{tmp_path}/plan.db")
    migrate(db.engine)
    old = utcnow() - timedelta(days=30)
    _add(db, [{"user_given": "someone@example.com", "user_id": "USOMEONE",
               "status": "resolved", "created_at": old}] * 3000)  # fmt: skip
    values = {"kinds": ["sensitive_command"], "givens": ["alice@example.com"],
              "users": ["UALICE"], "batch": [3001], "below": 3001,
              "since": utcnow() - timedelta(seconds=300)}  # fmt: skip
    with db.read() as session:
        conn = session.connection()
        ctx = conn.execute(_POSSIBLE_PARENTS, values).context
        params = ctx.parameters[0] if isinstance(ctx.parameters, list) else ctx.parameters
        plan = "\n".join(str(r[-1]) for r in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + ctx.statement, params))  # fmt: skip
    db.dispose()
    assert "ix_alerts_user_given_kind" in plan, plan
    assert "ix_alerts_user_id_status" in plan, plan
    assert "parent_id" not in plan and "SCAN" not in plan, plan
