"""The hot path's statement counts: what the issue measured as waste must stay gone.

These count statements, never time, so they hold on a loaded machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from securitybot.domain import Event, EventType
from securitybot.flows.events import apply_by_id
from securitybot.store.db import Database
from securitybot.store.models import Alert
from tests.flows.stored import stored_alert


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cur: Any, stmt: str, *_a: Any) -> None:
        seen.append(" ".join(stmt.split()))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_a_state_change_writes_the_alert_row_once(db: Database) -> None:
    alert_id = stored_alert(db, status="new")
    with statements(db) as seen:
        applied = apply_by_id(db, alert_id, Event(EventType.USER_RESOLVED),
                              also_set={"user_id": "U_ALICE"})  # fmt: skip
    assert applied is not None and applied.transition.changed
    updates = [s for s in seen if s.startswith("UPDATE alerts")]
    assert len(updates) == 1, updates
    with db.read() as session:
        stored = session.get(Alert, alert_id)
        assert stored is not None
        assert (stored.status, stored.version) == ("new", 2)
    # The object handed back carries the new values, as before.
    assert applied.alert.version == 2
