"""The hot path's statement counts: what the issue measured as waste must stay gone.

These count statements, never time, so they hold on a loaded machine.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from securitybot.config import PolicyConfig, Settings
from securitybot.domain import Event, EventType
from securitybot.flows import sweep
from securitybot.flows.events import apply_by_id
from securitybot.ingest.schema import AlertIn
from securitybot.ingest.service import ingest_batch
from securitybot.kinds import load_kinds
from securitybot.store.db import Database, migrate
from securitybot.store.models import Alert, AuditLog, Outbox, utcnow
from tests.flows.stored import stored_alert
from tests.perf.counting import statements


def test_a_state_change_writes_the_alert_row_once(db: Database) -> None:
    alert_id = stored_alert(db, status="new")
    with statements(db) as seen:
        applied = apply_by_id(db, alert_id, Event(EventType.USER_RESOLVED),
                              also_set={"user_id": "UALICE"})  # fmt: skip
    assert applied is not None and applied.transition.changed
    updates = [s for s in seen if s.startswith("UPDATE alerts")]
    assert len(updates) == 1, updates
    with db.read() as session:
        stored = session.get(Alert, alert_id)
        assert stored is not None
        assert (stored.status, stored.version) == ("new", 2)
    # The object handed back carries the new values, as before.
    assert applied.alert.version == 2


def _ingest(db: Database, n: int, prefix: str) -> list[Any]:
    kinds = load_kinds(Settings().alerts.dir)
    items = [(AlertIn(user=f"u{i}@bench.example", title="flurb -export", kind="sensitive_command",
                      dedup_key=f"{prefix}-{i}"), "bench") for i in range(n)]  # fmt: skip
    return ingest_batch(db, items, kinds=kinds, policy=PolicyConfig())


def test_ingest_sends_the_same_statements_whatever_the_batch_size(db: Database) -> None:
    """A statement whose text changes with the batch size is parsed again by the driver each
    time (and, on PostgreSQL, never prepared)."""
    texts: dict[int, set[str]] = {}
    for n in (3, 37, 64):
        with statements(db) as seen:
            results = _ingest(db, n, f"b{n}")
        assert all(r.created for r in results) and len({r.alert.id for r in results}) == n
        texts[n] = set(seen)
    assert texts[3] == texts[37] == texts[64]
    assert max(len(t) for t in texts[64]) < 2000


def test_a_batch_with_known_alerts_returns_them_and_stores_only_the_new(db: Database) -> None:
    first = _ingest(db, 4, "same")
    again = _ingest(db, 6, "same")
    assert [r.created for r in again] == [False] * 4 + [True] * 2
    assert [r.alert.id for r in again[:4]] == [r.alert.id for r in first]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 6


def test_the_deadline_sweep_escalates_a_batch_with_a_few_statements(db: Database) -> None:
    past = utcnow() - timedelta(seconds=1)
    ids = [stored_alert(db, status="awaiting_ack", respond_by=past, dm_channel="DALICE",
                        dm_ts=f"1.{i:06d}") for i in range(50)]  # fmt: skip
    with statements(db) as seen:
        assert sweep.sweep_overdue(db) == 50
    # Was ~6 statements per alert; now a handful per batch whatever its size.
    assert len(seen) <= 12, seen
    with db.read() as session:
        assert set(session.scalars(select(Alert.status).where(Alert.id.in_(ids)))) == {"escalated"}
        audited = session.scalars(
            select(AuditLog.alert_id).where(AuditLog.action == "alert.deadline_passed")
        ).all()
        posts = session.scalars(
            select(Outbox.alert_id).where(Outbox.effect == "post_escalation")
        ).all()
    assert sorted(audited) == sorted(posts) == sorted(ids)


def test_a_batch_of_alerts_is_stored_in_a_few_statements_on_both_stores(db: Database) -> None:
    """SQLite stored a group-committed batch one INSERT per alert (15% of ingest's CPU); both
    stores now reserve the ids, insert with one executemany and read back what was stored."""
    _ingest(db, 2, "known")
    with statements(db) as seen:
        results = _ingest(db, 64, "many")
    inserts = [s for s in seen if s.startswith("INSERT INTO alerts")]
    assert len(inserts) <= 1, len(inserts)
    assert len(seen) <= 8, seen
    assert all(r.created for r in results) and len({r.alert.id for r in results}) == 64


def test_duplicates_inside_a_batch_and_alerts_without_a_dedup_key(db: Database) -> None:
    kinds = load_kinds(Settings().alerts.dir)
    first = _ingest(db, 1, "dup")
    items = [
        (AlertIn(user="a@x.example", title="again", dedup_key="dup-0"), "bench"),
        (AlertIn(user="b@x.example", title="no key 1"), "bench"),
        (AlertIn(user="c@x.example", title="twice", dedup_key="twice"), "bench"),
        (AlertIn(user="d@x.example", title="twice, second", dedup_key="twice"), "bench"),
        (AlertIn(user="e@x.example", title="no key 2"), "bench"),
    ]
    results = ingest_batch(db, items, kinds=kinds, policy=PolicyConfig())
    assert [r.created for r in results] == [False, True, True, False, True]
    assert results[0].alert.id == first[0].alert.id
    assert results[3].alert.id == results[2].alert.id
    with db.read() as session:
        for r, title in zip(results, ["?", "no key 1", "twice", "twice", "no key 2"], strict=True):
            if title != "?":
                assert session.get(Alert, r.alert.id).title == title  # type: ignore[union-attr]


def test_sqlite_never_takes_another_writers_alert_for_its_own(tmp_path: Path) -> None:
    """SQLite's batch insert reserves ``max(id) + 1`` onwards. Should another process write
    an alert between that read and the insert (pysqlite opens no transaction for a SELECT), the
    insert must fail on the taken id: skipping it quietly made the batch report the other
    writer's alert as one of its own."""
    url = f"sqlite:///{tmp_path / 'race.db'}"
    mine, other = Database.from_url(url), Database.from_url(url)
    migrate(mine.engine)

    raced: list[bool] = []

    def another_writer(_conn: Any, _cur: Any, stmt: str, *_a: Any) -> None:
        if "max(id)" in stmt and not raced:
            raced.append(True)
            _ingest(other, 1, "other")

    event.listen(mine.engine, "after_cursor_execute", another_writer)
    try:
        with pytest.raises(IntegrityError):
            _ingest(mine, 3, "mine")
        assert raced
        with mine.read() as session:
            keys = set(session.scalars(select(Alert.dedup_key)))
        assert keys == {"other-0"}  # nothing of the failed batch was stored
    finally:
        mine.dispose()
        other.dispose()
