"""A bot-token refresh Slack refuses for good (oauth.v2.access answering one of its documented
errors other than ``invalid_refresh_token``: ``invalid_client_id``, ``bad_client_secret``,
``invalid_grant_type``, ``token_revoked``; docs.slack.dev/reference/methods/oauth.v2.access,
"Errors"). The same refresh token would be refused again, so it is not asked again and the
refusal is logged once; the current token serves until it expires; then that one workspace is
skipped when someone is looked up across workspaces, and the others still answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from securitybot.demo import FakeSlack
from securitybot.slack.api_types import WorkspaceUnusable
from securitybot.slack.installations import CACHE_TTL, Installations
from securitybot.store.db import Database
from tests.slack.gateways import BLUE, GREEN, installed_gateway
from tests.slack.test_installations import (
    CLIENT_ID,
    SECRET,
    count_bot_reads,
    install,
    replica,
)

REFUSALS = ["invalid_client_id", "bad_client_secret", "invalid_grant_type", "token_revoked"]
LOG = "securitybot.slack"


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack(team_id="T1") as fake:
        fake.oauth_client = (CLIENT_ID, SECRET)
        fake.token_rotation = True
        fake.token_lifetime = 7201  # refreshed 2 h ahead: due one second after it was issued
        fake.add_user("UBOB", "bob@example.com", real_name="Bob Builder", teams=[BLUE])
        fake.add_user("UCAROL", "carol@example.com", real_name="Carol", teams=[GREEN])
        fake.add_user("UDAVE", "dave@example.com", real_name="Dave", teams=[GREEN])
        yield fake


def expires(installations: Installations, team: str, at: float) -> str:
    """The stored bot token of ``team`` expires at ``at`` (its refresh token unchanged, and
    returned)."""
    bots = installations.store.store
    found = bots.find_bot(enterprise_id=None, team_id=team)
    assert found is not None and found.bot_refresh_token is not None
    found.bot_token_expires_at = int(at)
    bots.save_bot(found)
    return found.bot_refresh_token


def offered(fs: FakeSlack, refresh_token: str) -> int:
    """How often ``refresh_token`` was offered to Slack (oauth.v2.access)."""
    return sum(c.params.get("refresh_token") == refresh_token
               for c in fs.calls_to("oauth.v2.access"))  # fmt: skip


def refusals_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused to refresh" in r.getMessage()]


@pytest.mark.parametrize("error", REFUSALS)
async def test_a_token_slack_refuses_to_refresh_serves_until_it_expires_and_is_asked_once(
    db: Database, fs: FakeSlack, caplog: pytest.LogCaptureFixture, error: str
) -> None:
    caplog.set_level(logging.WARNING, logger=LOG)
    await install(db, fs, BLUE)
    [issued] = [c.response for c in fs.calls_to("oauth.v2.access")]
    now = [0.0]
    installations = replica(db, fs, clock=lambda: now[0])
    blue = expires(installations, BLUE, time.time() + 600)  # due (2 h ahead), valid 10 min
    fs.fail_next("oauth.v2.access", error=error)
    reads = count_bot_reads(installations)
    served = [await installations.client(BLUE) for _ in range(3)]
    assert reads == [1], "a token that is not refreshed is served from the cache meanwhile"
    now[0] += CACHE_TTL + 1  # the store is read again: the same refresh token, still refused
    served.append(await installations.client(BLUE))
    assert reads == [2]
    assert [c.token if c else None for c in served] == [issued["access_token"]] * 4
    assert offered(fs, blue) == 1, "the refused refresh token was offered to Slack again"
    [logged] = refusals_logged(caplog)
    assert BLUE in logged and error in logged
    # Expired now: nothing to send with and nothing Slack will refresh it with.
    expires(installations, BLUE, 1)
    now[0] += CACHE_TTL + 1
    with pytest.raises(WorkspaceUnusable) as unusable:
        await installations.client(BLUE)
    assert (unusable.value.team_id, unusable.value.error) == (BLUE, error)
    assert offered(fs, blue) == 1 and len(refusals_logged(caplog)) == 1


@pytest.mark.parametrize("error", REFUSALS)
async def test_a_workspace_whose_expired_token_slack_will_not_refresh_is_skipped_in_lookups(
    db: Database, fs: FakeSlack, caplog: pytest.LogCaptureFixture, error: str
) -> None:
    caplog.set_level(logging.WARNING, logger=LOG)
    gateway = await installed_gateway(db, fs)
    assert gateway.installations is not None
    blue = expires(gateway.installations, BLUE, 1)  # expired while nobody used it (a weekend)
    fs.fail_next("oauth.v2.access", error=error)  # Blue's refresh: the first one asked
    carol = await gateway.lookup_user("carol@example.com")
    assert carol is not None and carol.id == "UCAROL" and carol.teams == (GREEN,)
    assert offered(fs, blue) == 1
    # Later lookups skip Blue without asking Slack to refresh it again, and say so once.
    dave = await gateway.lookup_user("dave@example.com")
    assert dave is not None and dave.id == "UDAVE"
    assert await gateway.lookup_user("bob@example.com") is None  # only Blue knew him
    assert offered(fs, blue) == 1
    assert len(refusals_logged(caplog)) == 1
    skipped = [r for r in caplog.records if "skipped until it answers" in r.getMessage()]
    assert len(skipped) == 1 and BLUE in skipped[0].getMessage()


async def test_the_directory_sync_reads_the_others_past_a_token_slack_will_not_refresh(
    db: Database, fs: FakeSlack
) -> None:
    gateway = await installed_gateway(db, fs)
    assert gateway.installations is not None
    expires(gateway.installations, BLUE, 1)
    fs.fail_next("oauth.v2.access", error="invalid_client_id")
    await gateway.sync_directory()
    assert gateway.cached("carol@example.com")[1] is not None
    assert [c.response.get("error") for c in fs.calls_to("users.list")] == [None, None]
