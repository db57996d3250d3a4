"""Workspaces installed through OAuth, as two replicas see them: one client per workspace, a
token refreshed once before it expires even when both replicas need it at the same moment,
and an uninstalled workspace gone for both."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.exc import OperationalError

from securitybot.config import Settings
from securitybot.demo import FakeSlack
from securitybot.slack.api_types import SlackRetryLater
from securitybot.slack.installation_stores import AsyncStore
from securitybot.slack.installations import Installations
from securitybot.slack.oauth_flow import build_flow
from securitybot.store import slack_installations
from securitybot.store.db import Database

CLIENT_ID, SECRET = "2141029472.691202649728", "e1b9e11dfcd19c1982d5de12921e17e8c"


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack(team_id="T1") as fake:
        fake.oauth_client = (CLIENT_ID, SECRET)
        fake.token_rotation = True
        fake.token_lifetime = 7201  # refreshed 2 h ahead: one second after it was issued
        yield fake


def replica(
    db: Database, fs: FakeSlack, clock: Callable[[], float] = time.monotonic
) -> Installations:
    store = AsyncStore(slack_installations.installation_store(CLIENT_ID, db.engine))
    return Installations(store, api_url=fs.base_url, client_id=CLIENT_ID, client_secret=SECRET,
                         refresh_before=7200, clock=clock)  # fmt: skip


async def install(db: Database, fs: FakeSlack, team: str) -> None:
    settings = Settings.model_validate({"slack": {"api_url": fs.base_url, "oauth": {
        "client_id": CLIENT_ID, "client_secret": SECRET,
        "redirect_url": "https://securitybot.example.com/slack/oauth_redirect"}}})  # fmt: skip
    store = AsyncStore(slack_installations.installation_store(CLIENT_ID, db.engine))
    flow = build_flow(settings, store)
    found = await flow.run_installation(fs.grant_install(team, f"{team} Co", "UADMIN"))
    assert found is not None and found.team_id == team
    await flow.store_installation(None, found)  # type: ignore[arg-type]


async def test_two_replicas_refresh_a_token_once_and_both_use_the_new_one(
    db: Database, fs: FakeSlack
) -> None:
    await install(db, fs, "TBLUE")
    first, second = replica(db, fs), replica(db, fs)
    assert await first.teams() == ["TBLUE"] and await first.client("T9") is None
    await asyncio.sleep(1.2)
    a, b = await asyncio.gather(first.client("TBLUE"), second.client("TBLUE"))
    assert a is not None and b is not None
    exchanges = fs.calls_to("oauth.v2.access")
    refreshed = [
        c for c in exchanges if c.params.get("grant_type") == "refresh_token" and c.response["ok"]
    ]
    assert len(refreshed) == 1
    assert a.token == b.token == refreshed[0].response["access_token"]


async def test_an_uninstalled_workspace_is_gone_for_every_replica(
    db: Database, fs: FakeSlack
) -> None:
    fs.token_rotation = False
    await install(db, fs, "TBLUE")
    await install(db, fs, "TGREEN")
    first, second = replica(db, fs), replica(db, fs)
    assert await second.client("TGREEN") is not None
    # Bolt's app_uninstalled listener deletes through the first replica's store.
    await first.store.async_delete_all(enterprise_id=None, team_id="TGREEN")
    assert await first.client("TGREEN") is None and await first.teams() == ["TBLUE"]
    second.forget("TGREEN")  # what the second replica's cache does within CACHE_TTL
    assert await second.client("TGREEN") is None
    assert await second.client("TBLUE") is not None


def database_down(monkeypatch: pytest.MonkeyPatch, installations: Installations,
                  method: str) -> list[bool]:  # fmt: skip
    """The store's ``method`` (save_bot, save) fails while the returned flag is [True]."""
    store = installations.store.store
    real = getattr(store, method)
    down = [True]

    def failing(found: object) -> None:
        if down[0]:
            raise OperationalError(f"{method} into slack_*", {}, Exception("database is locked"))
        real(found)

    monkeypatch.setattr(store, method, failing)
    return down


def ok_refreshes(fs: FakeSlack) -> list[dict[str, object]]:
    return [c.response for c in fs.calls_to("oauth.v2.access")
            if c.params.get("grant_type") == "refresh_token" and c.response["ok"]]  # fmt: skip


async def test_a_refreshed_pair_the_database_failed_to_save_is_kept_and_saved_later(
    db: Database, fs: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old refresh token is spent at Slack before the new pair is saved: a failed write
    must not drop the new pair, or every later refresh fails (invalid_refresh_token)."""
    await install(db, fs, "TBLUE")
    first = replica(db, fs)
    down = database_down(monkeypatch, first, "save_bot")
    await asyncio.sleep(1.2)  # the token is due (refreshed 2 h ahead of its 7201 s)
    fs.token_lifetime = 7500  # the new one is not, for the rest of the test
    client = await first.client("TBLUE")
    [fresh] = ok_refreshes(fs)
    assert client is not None and client.token == fresh["access_token"]
    down[0] = False  # the database is back: the next call saves the pair it kept
    again = await first.client("TBLUE")
    assert again is not None and again.token == fresh["access_token"]
    stored = await first.store.async_find_bot(enterprise_id=None, team_id="TBLUE")
    assert stored is not None and stored.bot_refresh_token == fresh["refresh_token"]
    # Another replica reads the new pair (the next refresh spends its refresh token).
    later = await replica(db, fs).client("TBLUE")
    assert later is not None and later.token == fresh["access_token"]
    assert len(ok_refreshes(fs)) == 1


def count_bot_reads(installations: Installations) -> list[int]:
    """A counter of ``installations``' reads of stored bots from now on (counted, not timed:
    a wall-clock bound on a busy CI machine fails for reasons of its own)."""
    store, seen = installations.store, [0]
    find = store.async_find_bot

    async def counted(**kwargs: object) -> object:
        seen[0] += 1
        return await find(**kwargs)  # type: ignore[arg-type]

    store.async_find_bot = counted  # type: ignore[method-assign,assignment]
    return seen


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, None), (200, "internal_error"), (503, "service_unavailable")],
)
async def test_slack_failing_a_refresh_is_not_taken_for_another_replicas_refresh(
    db: Database, fs: FakeSlack, status: int, error: str | None
) -> None:
    """A 429 or a server error from oauth.v2.access spent nothing: the current token (still
    valid for hours) serves, nobody waits for a pair another replica never saved, and the
    refresh is tried again later with the same refresh token."""
    await install(db, fs, "TBLUE")
    [issued] = [c.response for c in fs.calls_to("oauth.v2.access")]
    first = replica(db, fs)
    await asyncio.sleep(1.2)
    # oauth.v2.access's documented errors (docs.slack.dev/reference/methods/oauth.v2.access);
    # a 429 comes with Retry-After (docs.slack.dev/apis/web-api/rate-limits).
    fs.fail_next("oauth.v2.access", status=status, error=error, retry_after=1)
    reads = fs.calls_to("oauth.v2.access")
    looked_up = count_bot_reads(first)
    client = await first.client("TBLUE")
    assert looked_up == [1]  # the one read that found the token due; no RACE_READS after it
    assert client is not None and client.token == issued["access_token"]
    assert len(fs.calls_to("oauth.v2.access")) == len(reads) + 1
    if status == 429:
        # Retry-After is respected: no second refresh within it.
        assert await first.client("TBLUE") is not None
        assert len(fs.calls_to("oauth.v2.access")) == len(reads) + 1
        await asyncio.sleep(1.1)
    again = await first.client("TBLUE")
    [fresh] = ok_refreshes(fs)
    assert again is not None and again.token == fresh["access_token"]


async def test_an_expired_token_slack_will_not_refresh_now_is_retried_later(
    db: Database, fs: FakeSlack
) -> None:
    """...but a token already expired cannot serve: the call waits for Retry-After."""
    await install(db, fs, "TBLUE")
    first = replica(db, fs)
    bots = first.store.store
    found = bots.find_bot(enterprise_id=None, team_id="TBLUE")
    assert found is not None
    found.bot_token_expires_at = 1  # long expired: nothing to send with
    bots.save_bot(found)
    fs.fail_next("oauth.v2.access", status=429, retry_after=3)
    with pytest.raises(SlackRetryLater) as raised:
        await first.client("TBLUE")
    assert raised.value.retry_after == 3


async def install_admin(db: Database, fs: FakeSlack, team: str) -> None:
    """``team`` installed by an org admin of another Grid org who granted admin.users:write."""
    settings = Settings.model_validate({"slack": {"api_url": fs.base_url, "oauth": {
        "client_id": CLIENT_ID, "client_secret": SECRET, "user_scopes": ["admin.users:write"],
        "redirect_url": "https://securitybot.example.com/slack/oauth_redirect"}}})  # fmt: skip
    store = AsyncStore(slack_installations.installation_store(CLIENT_ID, db.engine))
    flow = build_flow(settings, store)
    code = fs.grant_install(team, f"{team} Co", "UADMIN", user_scopes=["admin.users:write"],
                            enterprise="EGREEN")  # fmt: skip
    found = await flow.run_installation(code)
    assert found is not None and found.user_token
    await flow.store_installation(None, found)  # type: ignore[arg-type]


def user_refreshes(fs: FakeSlack) -> list[dict[str, object]]:
    return [c.response for c in fs.calls_to("oauth.v2.access")
            if c.params.get("grant_type") == "refresh_token"
            and c.response.get("token_type") == "user"]  # fmt: skip


async def test_resets_at_once_refresh_the_admin_user_token_once(
    db: Database, fs: FakeSlack
) -> None:
    """Two resets in one workspace at once (an AER burst): the installer's refresh token works
    once, so the second refresh got invalid_refresh_token and the reset went out with the
    expired token, which Slack refused for good: a confirmed compromise left signed in."""
    await install_admin(db, fs, "TGREEN")
    installations = replica(db, fs)
    await asyncio.sleep(1.2)  # the user token is due
    fs.token_lifetime = 7500
    first, second = await asyncio.gather(installations.admin_user("TGREEN"),
                                         installations.admin_user("TGREEN"))  # fmt: skip
    [fresh] = user_refreshes(fs)
    assert first is not None and second is not None
    assert first.client is not None and second.client is not None
    assert first.client.token == second.client.token == fresh["access_token"]


async def test_a_refreshed_admin_user_token_the_database_failed_to_save_is_kept(
    db: Database, fs: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    await install_admin(db, fs, "TGREEN")
    installations = replica(db, fs)
    down = database_down(monkeypatch, installations, "save")
    await asyncio.sleep(1.2)
    fs.token_lifetime = 7500
    admin = await installations.admin_user("TGREEN")
    [fresh] = user_refreshes(fs)
    assert admin is not None and admin.client is not None
    assert admin.client.token == fresh["access_token"]
    down[0] = False
    again = await installations.admin_user("TGREEN")  # saved now, not refreshed again
    assert again is not None and again.client is not None
    assert again.client.token == fresh["access_token"] and len(user_refreshes(fs)) == 1
    stored = await installations.store.async_find_installation(enterprise_id="EGREEN",
                                                               team_id="TGREEN")  # fmt: skip
    assert stored is not None and stored.user_token == fresh["access_token"]


async def test_an_expired_admin_user_token_slack_will_not_refresh_now_is_retried_later(
    db: Database, fs: FakeSlack
) -> None:
    fs.token_lifetime = 2
    await install_admin(db, fs, "TGREEN")
    installations = replica(db, fs)
    await installations.bot("TGREEN")  # the bot's own refresh, before Slack fails
    await asyncio.sleep(2.2)  # the user token has expired, not just come due
    fs.fail_next("oauth.v2.access", error="internal_error")
    with pytest.raises(SlackRetryLater):
        await installations.admin_user("TGREEN")
