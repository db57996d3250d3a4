"""The group join reads only the person's own alerts, even before PostgreSQL has statistics.

With ``user_id = … OR user_given = …`` the planner of a table nobody had ANALYZEd yet (a burst
into a new deployment) chose the parent_id index and filtered every top-level alert.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from securitybot.store.alerts import group_parent_query
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


def test_the_group_join_uses_the_person_indexes_without_statistics(pg: Database) -> None:
    now = utcnow()
    with pg.write() as session:
        session.add_all(
            Alert(
                kind="sensitive_command",
                severity="high",
                source="t",
                dedup_key=f"k{i}",
                user_given=f"u{i % 200}@example.com",
                title="t",
                status="new",
                created_at=now,
                updated_at=now,
            )
            for i in range(2000)
        )
    with pg.write() as session:
        alert = session.get(Alert, 1999)
        assert alert is not None
        q = group_parent_query(alert, "U_NOBODY", timedelta(seconds=300)).with_for_update()
        sql = str(q.compile(pg.engine, compile_kwargs={"literal_binds": True}))
        plan = "\n".join(r[0] for r in session.execute(text("EXPLAIN ANALYZE " + sql)))
        parent = session.scalars(q).first()
    assert parent is not None and parent.id == 199  # the person's first open alert
    assert "ix_alerts_user_given_kind" in plan, plan
    assert "ix_alerts_parent_id" not in plan, plan
