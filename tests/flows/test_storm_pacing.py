"""The DM path under Slack's limits (issue 27, items 2 and 3), on both stores.

- A DM is one chat.postMessage to the person's user id; Slack answers with the DM's id (D…),
  which the alert keeps for the updates (chat.update needs the D… id, as the fake insists).
- An alert whose person is known is DMed without waiting for the lookups of the rest of its
  batch (no head-of-line blocking).
- A 429 is "not yet": however many a DM meets, it never becomes ``dm_failed``; real errors
  still count toward it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from securitybot.config import Settings
from securitybot.demo import FakeSlack
from securitybot.flows.conversation import MAX_DM_ATTEMPTS, ConversationHandlers
from securitybot.flows.conversation_batch import BatchConversation
from securitybot.kinds import load_kinds
from securitybot.outbox import leases
from securitybot.outbox.dispatcher import Job, Outcome, Recorded, RetryAt
from securitybot.slack.gateway import SlackGateway
from securitybot.slack.tiers import Limits
from securitybot.store.db import Database
from securitybot.store.models import Alert, Outbox, utcnow
from securitybot.verify.duo import UnconfiguredVerifier
from tests.flows.stored import new_alert, pending_jobs


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com", first_name="Alice")
        fake.add_user("UBOB", "bob@example.com", first_name="Bob")
        yield fake


def _batch(db: Database, fs: FakeSlack) -> BatchConversation:
    settings = Settings()
    gateway = SlackGateway(AsyncWebClient(token="xoxb-test", base_url=fs.base_url),
                           limits=Limits(spare=1.0))  # Slack's own tiers  # fmt: skip
    handlers = ConversationHandlers(db=db, settings=settings, kinds=load_kinds(settings.alerts.dir),
                                    slack=gateway, verifier=UnconfiguredVerifier(),
                                    wake=lambda *_: None)  # fmt: skip
    return BatchConversation(handlers)


def _alert(db: Database, alert_id: int) -> Alert:
    with db.read() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        return alert


class _Handover:
    lease = timedelta(seconds=10)

    def __init__(self) -> None:
        self.released: list[tuple[int, Outcome]] = []

    def adopt(self, jobs: list[Job]) -> None:
        pass

    async def release(self, jobs: list[Job], outcomes: list[Outcome]) -> None:
        self.released.extend((job.id, o) for job, o in zip(jobs, outcomes, strict=True))


async def test_a_dm_is_one_post_to_the_user_id_and_keeps_the_dm_id_for_updates(
    db: Database, fs: FakeSlack
) -> None:
    alert_id = new_alert(db, "alice@example.com", "one-call")
    batch = _batch(db, fs)
    await batch.start_conversations(pending_jobs(db, "start_conversation"))
    assert await batch.send_dms(pending_jobs(db, "send_dm")) == [Recorded()]

    [dm] = fs.calls_to("chat.postMessage")
    assert (dm.params["channel"], dm.response["channel"]) == ("UALICE", "DUALICE")
    assert not fs.calls_to("conversations.open")
    alert = _alert(db, alert_id)
    assert (alert.status, alert.dm_channel, alert.dm_ts) == ("awaiting_ack", "DUALICE",
                                                             dm.response["ts"])  # fmt: skip

    # A re-render (chat.update) finds the message by the kept D… id.
    refresh = Job(
        id=0, effect="refresh_dm", alert_id=alert_id, payload={}, attempts=0, created_at=utcnow()
    )
    assert type(await batch.h.refresh_dm(refresh)).__name__ == "Done"
    [update] = fs.calls_to("chat.update")
    assert (update.params["channel"], update.response["ok"]) == ("DUALICE", True)
    # Alice's next DM goes straight to her DM channel.
    assert batch.h.slack is not None and batch.h.slack.dm_target("UALICE") == "DUALICE"


async def test_a_known_persons_dm_does_not_wait_for_the_rest_of_the_batch(
    db: Database, fs: FakeSlack
) -> None:
    fs.method_latency["users.lookupByEmail"] = 2.0  # Bob's lookup is slow
    batch = _batch(db, fs)
    assert batch.h.slack is not None
    batch.h.slack.learn_users([fs.users["UALICE"]])  # Alice is in the directory already
    batch.handover = _Handover()
    bob = new_alert(db, "bob@example.com", "slow")  # first in the batch
    alice = new_alert(db, "alice@example.com", "known")

    started = time.time()
    await batch.start_conversations(pending_jobs(db, "start_conversation"))
    posts = {c.response["channel"]: c.at - started for c in fs.calls_to("chat.postMessage")}
    assert posts["DUALICE"] < 1.5, posts  # not held up by Bob's 2 s lookup
    assert posts["DUBOB"] >= 2.0, posts
    assert _alert(db, alice).status == _alert(db, bob).status == "awaiting_ack"


async def _send_meeting(db: Database, fs: FakeSlack, failure: dict[str, Any]) -> Outcome:
    """One run of the alert's DM job against a Slack that answers ``failure``, recorded as
    the dispatcher records it."""
    fs.fail_next("chat.postMessage", **failure)
    [job] = pending_jobs(db, "send_dm")
    [outcome] = await _batch(db, fs).send_dms([job])
    if not isinstance(outcome, Recorded):
        await asyncio.to_thread(leases.record_many, db, [(job, outcome)])
    return outcome


async def test_429s_never_make_a_dm_failed_however_many(db: Database, fs: FakeSlack) -> None:
    alert_id = new_alert(db, "alice@example.com", "limited")
    await _batch(db, fs).start_conversations(pending_jobs(db, "start_conversation"))
    for _ in range(MAX_DM_ATTEMPTS + 2):
        outcome = await _send_meeting(db, fs, {"status": 429, "retry_after": 1})
        assert isinstance(outcome, RetryAt) and outcome.failure is False
    [job] = pending_jobs(db, "send_dm")
    assert job.attempts == 0
    # Even a job that had used up all but its last attempt on real errors.
    with db.write() as session:
        session.get(Outbox, job.id).attempts = MAX_DM_ATTEMPTS - 1  # type: ignore[union-attr]
    outcome = await _send_meeting(db, fs, {"status": 429, "retry_after": 1})
    assert isinstance(outcome, RetryAt) and outcome.failure is False
    assert _alert(db, alert_id).status == "new"
    assert len([c for c in fs.calls_to("chat.postMessage") if c.status == 429]) == (
        MAX_DM_ATTEMPTS + 3
    )

    # A real error on that last attempt does count: the DM failed, the alert escalates.
    assert await _send_meeting(db, fs, {"status": 500}) == Recorded()
    alert = _alert(db, alert_id)
    assert (alert.status, alert.escalation_reason) == ("escalated", "dm_failed")
