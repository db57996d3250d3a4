"""An escalation routed to its workspace's channel (escalation.routes) stays there when its post
is retried: the channel is chosen once, before the first post, not again on every run.

Scenario: the first run routes Bob's escalation to his workspace's channel, posts it, and dies
before recording it. The retry runs in another process, whose Slack lookup of Bob is refused
for now (rate limited); routing would fall back to the default channel, look there, find
nothing and post a second escalation that the route's responders could not triage.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from securitybot.config import Settings
from securitybot.demo import FakeSlack
from securitybot.flows.escalation_posts import EscalationPosts
from securitybot.flows.handler_core import HandlerCore
from securitybot.kinds import load_kinds
from securitybot.outbox.jobs import Done, Job
from securitybot.slack.gateway import SlackGateway
from securitybot.slack.tiers import Limits
from securitybot.store.db import Database
from securitybot.store.models import Alert, Outbox
from securitybot.store.outbox import enqueue
from securitybot.verify.duo import UnconfiguredVerifier
from tests.flows.stored import stored_alert

SETTINGS = {
    "slack": {"security_channel": "CSECURITY"},
    "escalation": {"routes": [{"team_id": "T2", "channel": "CEU"}]},
}


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("UBOB", "bob@example.com", first_name="Bob", teams=["T2"])
        fake.add_channel("CSECURITY")
        fake.add_channel("CEU")
        yield fake


def _posts(db: Database, fs: FakeSlack) -> EscalationPosts:
    """The escalation handlers of a fresh process: its own Slack gateway, nobody cached."""
    settings = Settings.model_validate(SETTINGS)
    gateway = SlackGateway(AsyncWebClient(token="xoxb-test", base_url=fs.base_url),
                           limits=Limits(scale=1000.0))  # fmt: skip
    core = HandlerCore(db=db, settings=settings, kinds=load_kinds(settings.alerts.dir),
                       slack=gateway, verifier=UnconfiguredVerifier(),
                       wake=lambda *_: None)  # fmt: skip
    return EscalationPosts(core)


def _job(db: Database, alert_id: int, effect: str, key: str, **payload: Any) -> Job:
    """The job as the dispatcher hands it over (queued if not yet), its delivery mark read."""
    with db.write() as session:
        enqueue(session, effect=effect, alert_id=alert_id, payload=payload, idempotency_key=key)
    with db.read() as session:
        row = session.scalars(select(Outbox).where(Outbox.idempotency_key == key)).one()
        return Job(id=row.id, effect=effect, alert_id=alert_id, payload=row.payload,
                   attempts=row.attempts, created_at=row.created_at,
                   delivery_started=row.delivery_started_at is not None)  # fmt: skip


def _escalated(db: Database) -> int:
    return stored_alert(db, status="escalated", user_id="UBOB", user_given="bob@example.com",
                        escalation_reason="dm_failed")  # fmt: skip


def _die_before_recording(posts: EscalationPosts) -> None:
    def lost(*_: Any, **__: Any) -> None:
        raise ConnectionError("the database went away")

    posts.h._set = lost  # type: ignore[method-assign]


async def test_a_retried_escalation_is_found_in_its_routed_channel_not_posted_again(
    db: Database, fs: FakeSlack
) -> None:
    alert_id = _escalated(db)
    first = _posts(db, fs)
    _die_before_recording(first)
    with pytest.raises(ConnectionError):
        await first.post_escalation(_job(db, alert_id, "post_escalation", f"esc:{alert_id}"))
    [posted] = fs.calls_to("chat.postMessage")
    assert posted.params["channel"] == "CEU"

    fs.fail_next("users.info", status=429, retry_after=30, times=10)
    retry = _job(db, alert_id, "post_escalation", f"esc:{alert_id}")
    assert retry.delivery_started
    assert await _posts(db, fs).post_escalation(retry) == Done()

    assert len(fs.calls_to("chat.postMessage")) == 1  # one escalation, in the route's channel
    with db.read() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        # Its responders' clicks are checked against this channel (slack/triage.py).
        assert (alert.escalation_channel, alert.escalation_ts) == ("CEU", posted.response["ts"])


async def test_a_retried_next_tier_repost_stays_in_the_routed_channel(
    db: Database, fs: FakeSlack
) -> None:
    """The same for a next-tier repost of an escalation whose channel was never recorded."""
    alert_id = _escalated(db)
    first = _posts(db, fs)
    _die_before_recording(first)
    key = f"repost:{alert_id}:2"
    with pytest.raises(ConnectionError):
        await first.repost_escalation(_job(db, alert_id, "repost_escalation", key, tier=2))
    fs.fail_next("users.info", status=429, retry_after=30, times=10)
    retry = _job(db, alert_id, "repost_escalation", key, tier=2)
    assert await _posts(db, fs).repost_escalation(retry) == Done()

    [posted] = fs.calls_to("chat.postMessage")
    assert posted.params["channel"] == "CEU"
    with db.read() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None and alert.escalation_channel == "CEU"
