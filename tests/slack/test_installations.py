"""Workspaces installed through OAuth, as two replicas see them: one client per workspace, a
token refreshed once before it expires even when both replicas need it at the same moment,
and an uninstalled workspace gone for both."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from securitybot.config import Settings
from securitybot.demo import FakeSlack
from securitybot.slack.installations import AsyncStore, Installations
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


def replica(db: Database, fs: FakeSlack) -> Installations:
    store = AsyncStore(slack_installations.installation_store(CLIENT_ID, db.engine))
    return Installations(store, api_url=fs.base_url, client_id=CLIENT_ID, client_secret=SECRET,
                         refresh_before=7200)  # fmt: skip


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
