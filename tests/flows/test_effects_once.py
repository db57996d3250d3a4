"""Effects the alert machine asks for once per alert are queued once, however often a re-run
handler repeats the event that asked for them (its first outcome lost to a crash)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from securitybot.domain import Event, EventType
from securitybot.flows.events import apply_by_id
from securitybot.store.db import Database
from securitybot.store.models import Outbox
from tests.flows.stored import stored_alert


def _jobs(db: Database, alert_id: int, effect: str) -> list[int]:
    with db.read() as session:
        q = select(Outbox.id).where(Outbox.alert_id == alert_id, Outbox.effect == effect)
        return list(session.scalars(q))


def test_a_rerun_lookup_queues_the_dm_once(db: Database) -> None:
    # start_conversation ran, applied user_resolved, then died before recording its outcome:
    # the re-run applies it again while the alert is still `new`.
    alert_id = stored_alert(db, status="new")
    apply_by_id(db, alert_id, Event(EventType.USER_RESOLVED))
    apply_by_id(db, alert_id, Event(EventType.USER_RESOLVED))
    assert len(_jobs(db, alert_id, "send_dm")) == 1


@pytest.mark.parametrize("event", [EventType.USER_UNKNOWN, EventType.DM_FAILED])
def test_an_escalation_is_queued_once(db: Database, event: EventType) -> None:
    alert_id = stored_alert(db, status="new")
    apply_by_id(db, alert_id, Event(event))
    apply_by_id(db, alert_id, Event(event))  # ignored now: the alert is escalated
    assert len(_jobs(db, alert_id, "post_escalation")) == 1
