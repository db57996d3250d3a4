"""Who an email is, and their DM channel, cost Slack calls once: then the durable cache."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from securitybot.demo import FakeSlack
from securitybot.slack.gateway import SlackGateway, SlackPermanentError, SlackRetryLater
from securitybot.store import slack_people
from securitybot.store.db import Database
from tests.slack.gateways import attached_gateway


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com", first_name="Alice")
        yield fake


async def _dm(gateway: SlackGateway) -> str:
    user = await gateway.lookup_user("Alice@example.com".lower())
    assert user is not None
    channel = await gateway.open_dm(user.id)
    return await gateway.post(channel, "was this you?")


@pytest.fixture
async def restarted(fs: FakeSlack, db: Database) -> AsyncIterator[SlackGateway]:
    """A gateway that DMed Alice once, then a second one started afresh on the same store."""
    first, directory = await attached_gateway(fs, db)
    await _dm(first)
    await directory.close()  # what the service's stop hook does
    second, directory = await attached_gateway(fs, db)
    yield second
    await directory.close()


async def test_a_person_is_looked_up_and_their_dm_opened_once_across_restarts(
    fs: FakeSlack, restarted: SlackGateway
) -> None:
    await _dm(restarted)
    await _dm(restarted)
    assert len(fs.calls_to("users.lookupByEmail")) == 1
    assert len(fs.calls_to("conversations.open")) == 1
    assert len(fs.calls_to("chat.postMessage")) == 3


async def test_a_cached_dm_channel_slack_no_longer_has_is_dropped_and_opened_again(
    fs: FakeSlack, db: Database, restarted: SlackGateway
) -> None:
    fs.fail_next("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackRetryLater) as caught:
        await _dm(restarted)
    # Slack posted nothing: the retry costs no attempt and needs no history lookup.
    assert caught.value.refused and not caught.value.spends_attempt
    with db.read() as session:
        assert slack_people.dm_channel(session, "UALICE") is None
    await _dm(restarted)
    assert len(fs.calls_to("conversations.open")) == 2


async def test_a_user_slack_no_longer_knows_is_forgotten(
    fs: FakeSlack, db: Database, restarted: SlackGateway
) -> None:
    fs.fail_next("conversations.open", error="user_not_found")
    restarted._dms.clear()  # as if the channel had not been opened yet
    with pytest.raises(SlackPermanentError):
        await _dm(restarted)
    with db.read() as session:
        assert slack_people.user(session, "alice@example.com") is None
        assert slack_people.user(session, "UALICE") is None
    await _dm(restarted)
    assert len(fs.calls_to("users.lookupByEmail")) == 2


async def test_a_person_noted_while_the_cache_is_being_written_is_written_too(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user_change arriving while the write-behind commits the previous batch was left in
    memory until some later note kicked another write (none came: the event was lost)."""
    import asyncio
    import threading

    from securitybot.slack.directory import DbDirectory
    from securitybot.store.models import utcnow

    writing, release = threading.Event(), threading.Event()
    put_users = slack_people.put_users

    def slow_put_users(session: object, users: list[object]) -> None:
        writing.set()
        release.wait(10)  # the first batch's commit is in flight
        put_users(session, users)  # type: ignore[arg-type]

    monkeypatch.setattr(slack_people, "put_users", slow_put_users)
    directory = DbDirectory(db, flush_every=0.01)
    data = {"id": "UBOB", "email": "bob@example.com", "name": "bob"}
    directory.note_user(["UBOB", "bob@example.com"], data, utcnow())
    await asyncio.to_thread(writing.wait, 10)
    changed = {**data, "email": "robert@example.com"}
    directory.note_user(["UBOB", "robert@example.com"], changed, utcnow())  # mid-write
    release.set()
    for _ in range(200):
        with db.read() as session:
            if slack_people.user(session, "robert@example.com"):
                break
        await asyncio.sleep(0.02)
    with db.read() as session:
        assert slack_people.user(session, "robert@example.com"), "the second note was never written"
    await directory.close()
