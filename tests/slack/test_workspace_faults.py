"""Several workspaces installed through OAuth, one of them broken: a person of another one is
still found, and the directory sync still reads the others.

One workspace answers an auth error (its token revoked without an ``app_uninstalled`` reaching
us yet, an account deactivated, ...) or a 429: the fake answers with Slack's documented
payloads (``{"ok": false, "error": "token_revoked"}``, docs.slack.dev/reference/methods/
users.lookupByEmail "Errors"; a 429 with Retry-After, docs.slack.dev/apis/web-api/rate-limits).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from securitybot.demo import FakeSlack
from securitybot.slack.api_types import SlackRetryLater
from securitybot.store.db import Database
from tests.slack.gateways import BLUE, GREEN, installed_gateway
from tests.slack.test_installations import CLIENT_ID, SECRET


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack(team_id="T1") as fake:
        fake.oauth_client = (CLIENT_ID, SECRET)
        fake.add_user("UALICE", "alice@example.com", real_name="Alice Liddell")
        fake.add_user("UBOB", "bob@example.com", real_name="Bob Builder", teams=[BLUE])
        fake.add_user("UCAROL", "carol@example.com", real_name="Carol", teams=[GREEN])
        yield fake


async def test_a_revoked_workspace_is_skipped_when_looking_someone_up(
    db: Database, fs: FakeSlack
) -> None:
    gateway = await installed_gateway(db, fs)
    fs.revoke_workspace(BLUE)  # its app_uninstalled has not reached us (or went elsewhere)
    carol = await gateway.lookup_user("carol@example.com")
    assert carol is not None and carol.id == "UCAROL" and carol.teams == (GREEN,)
    asked = [c.response.get("error") for c in fs.calls_to("users.lookupByEmail")]
    assert asked == ["users_not_found", "token_revoked", None]
    # Nobody in any workspace still answered: not found, not an error.
    assert await gateway.lookup_user("nobody@example.com") is None


@pytest.mark.parametrize("error", ["invalid_auth", "account_inactive", "token_expired"])
async def test_a_workspace_answering_an_auth_error_is_skipped(
    db: Database, fs: FakeSlack, error: str
) -> None:
    gateway = await installed_gateway(db, fs)
    fs.fail_next("users.lookupByEmail", error=error)  # the first workspace asked: the home one
    carol = await gateway.lookup_user("carol@example.com")
    assert carol is not None and carol.id == "UCAROL"


async def test_a_workspace_rate_limited_does_not_hold_up_the_others(
    db: Database, fs: FakeSlack
) -> None:
    gateway = await installed_gateway(db, fs)
    fs.fail_next("users.lookupByEmail", status=429, retry_after=30)
    carol = await gateway.lookup_user("carol@example.com")
    assert carol is not None and carol.id == "UCAROL"
    # Someone found nowhere else may be in the workspace that said 429: ask again later.
    fs.fail_next("users.lookupByEmail", status=429, retry_after=30)
    with pytest.raises(SlackRetryLater) as later:
        await gateway.lookup_user("nobody@example.com")
    assert later.value.retry_after is not None and later.value.retry_after > 20


async def test_the_directory_sync_reads_the_workspaces_that_answer(
    db: Database, fs: FakeSlack
) -> None:
    gateway = await installed_gateway(db, fs)
    fs.revoke_workspace(BLUE)
    count = await gateway.sync_directory()
    assert count >= 2  # Alice (home), Carol (Green)
    assert gateway.cached("carol@example.com")[1] is not None
    assert gateway.cached("alice@example.com")[1] is not None
    errors = [c.response.get("error") for c in fs.calls_to("users.list")]
    assert errors == [None, "token_revoked", None]


async def test_the_directory_sync_past_a_rate_limited_workspace(
    db: Database, fs: FakeSlack
) -> None:
    """A workspace still answering 429 after the page retries is left for the next sync
    (which is reported as failed), after the others were read."""
    gateway = await installed_gateway(db, fs)
    fs.fail_next("users.list", status=429, retry_after=0, times=6)  # home: 1 + PAGE_RETRIES
    with pytest.raises(SlackRetryLater):
        await gateway.sync_directory()
    assert gateway.cached("carol@example.com")[1] is not None
    assert gateway.cached("bob@example.com")[1] is not None
