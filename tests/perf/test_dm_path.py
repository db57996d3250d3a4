"""How many transactions and statements the DM path costs per alert, counted, not timed.

Issue #15 found each step of a job opening its own session (load, suppression check,
exemption/snooze check, group join, apply, DM context, grouped lookup...). These scenarios run
the two handlers that take an alert from `new` to the DM being sent against the real store and
the fake Slack, and count what reaches the database.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select, update

from securitybot.config import Settings
from securitybot.demo import FakeSlack
from securitybot.flows.conversation import ConversationHandlers
from securitybot.flows.conversation_batch import BatchConversation
from securitybot.kinds import load_kinds
from securitybot.outbox.dispatcher import Job, Recorded
from securitybot.slack.directory import DbDirectory
from securitybot.slack.gateway import SlackGateway
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, Outbox
from securitybot.verify.duo import UnconfiguredVerifier
from tests.flows.stored import new_alert
from tests.perf.counting import counted


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com", first_name="Alice")
        yield fake


async def _handlers(db: Database, fs: FakeSlack, people: DbDirectory) -> BatchConversation:
    settings = Settings()
    gateway = SlackGateway(AsyncWebClient(token="xoxb-test", base_url=fs.base_url))
    await gateway.attach(people)
    kinds = load_kinds(settings.alerts.dir)
    # One job at a time, without a dispatcher: a batch of one.
    return BatchConversation(ConversationHandlers(db=db, settings=settings, kinds=kinds,
                                                  slack=gateway, verifier=UnconfiguredVerifier(),
                                                  wake=lambda *_: None))  # fmt: skip


def _job(db: Database, alert_id: int, effect: str) -> Job:
    with db.read() as session:
        row = session.scalars(
            select(Outbox).where(Outbox.alert_id == alert_id, Outbox.effect == effect)
        ).one()
        return Job(id=row.id, effect=effect, alert_id=alert_id, payload=row.payload or {},
                   attempts=0, created_at=row.created_at)  # fmt: skip


async def test_a_new_alert_reaches_the_dm_in_four_transactions(db: Database, fs: FakeSlack) -> None:
    people = DbDirectory(db)
    handlers = await _handlers(db, fs, people)
    # Alice was DMed before, so her Slack id and DM channel are cached (the common case) and
    # this DM does not greet her: the counts below are the steady state, not a first contact.
    first = new_alert(db, "alice@example.com", "warm-up")
    assert await handlers.start_conversations([_job(db, first, "start_conversation")]) == [
        Recorded()
    ]
    assert await handlers.send_dms([_job(db, first, "send_dm")]) == [Recorded()]
    with db.write() as session:  # she answered it: the next alert starts its own conversation
        session.execute(update(Alert).where(Alert.id == first).values(status="resolved"))
    await people.close()  # her Slack id and DM channel are stored now, not during the count

    alert_id = new_alert(db, "alice@example.com", "counted")
    job = _job(db, alert_id, "start_conversation")
    with counted(db) as start:
        assert await handlers.start_conversations([job]) == [Recorded()]
    job = _job(db, alert_id, "send_dm")
    with counted(db) as send:
        assert await handlers.send_dms([job]) == [Recorded()]

    with db.read() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        assert (alert.status, alert.user_id, alert.dm_channel) == (
            "awaiting_ack",
            "UALICE",
            "DUALICE",
        )
        actions = session.scalars(
            select(AuditLog.action).where(AuditLog.alert_id == alert_id).order_by(AuditLog.id)
        ).all()
    assert actions == ["alert.user_resolved", "alert.dm_sent"]
    posts = fs.calls_to("chat.postMessage")
    assert len([c for c in posts if c.response.get("channel") == "DUALICE"]) == 2
    # Was 5 + 5 transactions (load, suppression, exemption/snooze, group join, apply; load,
    # DM context, delivery mark, apply, grouped re-count).
    assert (start["transactions"], send["transactions"]) == (2, 2), (start, send)
    # Was 12 + 9 statements (SQLite) and 12 + 11 (PostgreSQL).
    assert start["statements"] + send["statements"] <= 19, (start, send)
