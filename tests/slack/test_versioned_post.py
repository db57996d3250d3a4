"""A storm's and a held-resets batch's one message (slack/versioned_post.py) ends up showing the
row's newest count, even when the post was retried and found the message an earlier run posted.

Scenario: the first run posts what the row held then (3), and dies before recording it; more are
held (5); the update job finds nothing posted yet and is done; the post job's retry finds the
first run's message in the channel's history instead of posting again. That message shows 3: it
must be brought to 5, not taken as showing the row's current version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from securitybot.aer.budget import HELD_POST_EFFECT, HELD_UPDATE_EFFECT
from securitybot.aer.held_posts import HeldPosts
from securitybot.config import Settings
from securitybot.demo import FakeSlack
from securitybot.outbox.jobs import Done, Job
from securitybot.slack.gateway import SlackGateway
from securitybot.slack.tiers import Limits
from securitybot.slack.versioned_post import VersionedPost
from securitybot.store.aer_budget_models import AerHeldBatch, AerHeldReset
from securitybot.store.db import Database
from securitybot.store.models import Outbox
from securitybot.store.outbox import enqueue
from securitybot.store.storm_models import Storm, StormAlert
from securitybot.storms.guard import POST_EFFECT, UPDATE_EFFECT
from securitybot.storms.posts import StormPosts

CHANNEL = "CSECURITY"


@dataclass
class Case:
    posts: type[VersionedPost]
    post_effect: str
    update_effect: str
    open_row: Callable[[Any, int], list[Any]]  # the row and its held people's rows
    hold: Callable[[Any, Any, int], list[Any]]  # more held: the new people's rows
    shows: Callable[[int], str]  # how the message reads n held


def _storm(session: Any, held: int) -> list[Any]:
    storm = Storm(key="sensitive_command:test", kind="sensitive_command", source="test",
                  people=10, held=held, max_people=10, window=600.0, version=1)  # fmt: skip
    session.add(storm)
    session.flush()
    return [storm, *_storm_hold(session, storm, held)]


def _storm_hold(session: Any, storm: Storm, more: int) -> list[Any]:
    start = session.query(StormAlert).filter_by(storm_id=storm.id).count()
    storm.held, storm.version = start + more, storm.version + 1 if start else storm.version
    return [StormAlert(alert_id=1000 + i, storm_id=storm.id, user_id=f"U{i:03d}")
            for i in range(start, start + more)]  # fmt: skip


def _batch(session: Any, held: int) -> list[Any]:
    batch = AerHeldBatch(org="E0ACME", resets=held, anomalies=held, budget_count=3,
                         budget_per=3600.0, version=1)  # fmt: skip
    session.add(batch)
    session.flush()
    return [batch, *_batch_hold(session, batch, held)]


def _batch_hold(session: Any, batch: AerHeldBatch, more: int) -> list[Any]:
    start = session.query(AerHeldReset).filter_by(batch_id=batch.id).count()
    batch.resets = batch.anomalies = start + more
    batch.version = batch.version + 1 if start else batch.version
    return [AerHeldReset(batch_id=batch.id, org="E0ACME", user_id=f"U{i:03d}", anomaly_id=i)
            for i in range(start, start + more)]  # fmt: skip


CASES = {
    "storm": Case(
        StormPosts, POST_EFFECT, UPDATE_EFFECT, _storm, _storm_hold, lambda n: f"{n} DMs held"
    ),
    "aer_held": Case(
        HeldPosts,
        HELD_POST_EFFECT,
        HELD_UPDATE_EFFECT,
        _batch,
        _batch_hold,
        lambda n: f"{n} automatic session resets held",
    ),
}


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_channel(CHANNEL)
        yield fake


def _job(db: Database, effect: str, key: str, payload: dict[str, Any]) -> Job:
    """The job as the dispatcher hands it over (queued if not yet), its delivery mark read."""
    with db.write() as session:
        enqueue(session, effect=effect, payload=payload, idempotency_key=key)
    with db.read() as session:
        row = session.scalars(select(Outbox).where(Outbox.idempotency_key == key)).one()
        return Job(id=row.id, effect=effect, alert_id=None, payload=row.payload,
                   attempts=row.attempts, created_at=row.created_at,
                   delivery_started=row.delivery_started_at is not None)  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
async def test_a_retried_post_that_finds_the_first_runs_message_brings_it_up_to_date(
    db: Database, fs: FakeSlack, name: str
) -> None:
    case = CASES[name]
    settings = Settings.model_validate({"slack": {"security_channel": CHANNEL}})
    gateway = SlackGateway(AsyncWebClient(token="xoxb-test", base_url=fs.base_url),
                           limits=Limits(scale=1000.0))  # fmt: skip
    posts = case.posts(db, settings, gateway)
    with db.write() as session:
        row, *people = case.open_row(session, 3)
        session.add_all(people)
        session.flush()
        row_id = row.id
    payload = {posts.id_key: row_id}

    # Run 1 posts "3 held" and dies before writing down what it showed.
    def lost(*_: Any) -> None:
        raise ConnectionError("the database went away")

    posts._shown = lost  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        await posts.post(_job(db, case.post_effect, f"post:{row_id}", payload))
    [first] = fs.calls_to("chat.postMessage")
    assert case.shows(3) in first.params["text"]

    # Two more held; their update finds no message to update (none recorded yet).
    with db.write() as session:
        row = session.get(case.posts.model, row_id)
        session.add_all(case.hold(session, row, 2))
    posts = case.posts(db, settings, gateway)  # the next run, another process
    update = _job(db, case.update_effect, f"update:{row_id}:2", payload)
    assert await posts.update(update) == Done()

    # The post job's retry finds run 1's message instead of posting again.
    retry = _job(db, case.post_effect, f"post:{row_id}", payload)
    assert retry.delivery_started
    assert await posts.post(retry) == Done()

    assert len(fs.calls_to("chat.postMessage")) == 1  # never posted twice
    [shown] = fs.messages(CHANNEL)
    assert case.shows(5) in shown["text"]
    [updated] = fs.calls_to("chat.update")
    assert updated.params["ts"] == first.response["ts"]
    with db.read() as session:
        row = session.get(case.posts.model, row_id)
        assert (row.ts, row.channel) == (first.response["ts"], CHANNEL)
        assert row.shown_version == row.version == 2
