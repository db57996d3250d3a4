"""Slack's rate tiers: the fake enforces them as Slack does, and a burst is spread, not stormed.

Limits are scaled up (Limits(scale=...)) so a minute's worth happens in about a second; the
shape is Slack's: per-method tiers, one post a second per channel, 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from securitybot.config import Settings
from securitybot.demo import FakeSlack
from securitybot.slack.gateway import SlackGateway, SlackRetryLater
from securitybot.slack.tiers import Limits

USERS = 40


def _limits() -> Limits:
    return Limits(scale=6.0, burst_seconds=1.0)  # Tier 3: 5 calls a second, 5 saved up


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        for i in range(USERS):
            fake.add_user(f"U{i:04d}", f"u{i}@example.com")
        fake.add_channel("CONE")
        fake.add_channel("CTWO")
        fake.add_channel("CNOTIN", bot_member=False)
        fake.enforce_rate_limits(_limits())
        yield fake


async def _status(call: Awaitable[object]) -> int:
    """200, or 429 for Slack's rate-limit refusal; anything else (a 500, another error, a
    dropped connection) is not a rate limit and fails the test."""
    try:
        await call
    except SlackApiError as exc:
        assert exc.response.status_code == 429, exc.response.data
        assert exc.response["error"] == "ratelimited"
        assert exc.response.headers["Retry-After"] == "1"
        return 429
    return 200


async def test_the_fake_answers_429_with_retry_after_past_a_methods_tier(fs: FakeSlack) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=fs.base_url, retry_handlers=[])
    statuses = [await _status(client.conversations_open(users=f"U{i:04d}")) for i in range(10)]
    assert statuses[:5] == [200] * 5 and 429 in statuses[5:]


async def test_posts_to_one_channel_are_limited_per_channel(fs: FakeSlack) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=fs.base_url, retry_handlers=[])
    statuses = [
        await _status(client.chat_postMessage(channel=channel, text="hi"))
        for channel in ("CONE", "CONE", "CONE", "CONE", "CTWO")
    ]
    # Three saved up for CONE, then refused; CTWO has its own allowance.
    assert statuses == [200, 200, 200, 429, 200]


async def test_errors_other_than_a_rate_limit_are_not_counted_as_one(fs: FakeSlack) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=fs.base_url, retry_handlers=[])
    fs.fail_next("chat.postMessage", status=500)
    with pytest.raises(AssertionError):
        await _status(client.chat_postMessage(channel="CONE", text="hi"))
    with pytest.raises(AssertionError):  # the bot was never invited to CNOTIN
        await _status(client.chat_postMessage(channel="CNOTIN", text="hi"))


async def _open_all(gateway: SlackGateway) -> float:
    """Open every user's DM at once, each retrying after Slack's Retry-After (as the outbox
    does); returns how long the burst took."""

    async def one(i: int) -> None:
        while True:
            try:
                await gateway.open_dm(f"U{i:04d}")
                return
            except SlackRetryLater as exc:
                await asyncio.sleep(exc.retry_after or 1.0)

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(USERS))), 60)
    return time.monotonic() - started


def _wait_count(method: str) -> float:
    return (
        REGISTRY.get_sample_value("securitybot_slack_bucket_wait_seconds_count", {"method": method})
        or 0.0
    )


async def test_a_burst_keeps_to_the_tier_from_the_first_call(fs: FakeSlack) -> None:
    """No 429 at all: the gateway spends Slack's allowance as Slack counts it (keeping one
    token spare for calls that reach Slack a little out of their turn)."""
    limits = Limits(scale=6.0, burst_seconds=1.0, spare=1.0)
    gateway = SlackGateway(AsyncWebClient(token="xoxb-test", base_url=fs.base_url),
                           limits=limits)  # fmt: skip
    waited = _wait_count("conversations.open")
    took = await _open_all(gateway)
    assert len(gateway._dms) == USERS
    assert fs.rate_limited == 0
    # Tier 3 scaled: 5 a second with 5 saved up (4 used, one spare): no faster than that.
    assert took >= (USERS - 4) / 5.0 * 0.9, took
    assert _wait_count("conversations.open") - waited == USERS  # every call observed


async def test_posts_keep_to_the_channel_and_the_workspace_ceiling(fs: FakeSlack) -> None:
    """Posts to many people's DMs (by user id) keep to the workspace's post ceiling, posts to
    one channel to one a second: no 429 either way. (Not scaled: the fake's clock is its
    threads', which a loaded machine delays; the spare token covers 0.2 s of that.)"""
    ceiling = {"chat.postMessage": 300.0}  # slack.rate_limits: 5 posts a second
    fs.enforce_rate_limits(Limits(burst_seconds=1.0, per_minute=ceiling))
    gateway = SlackGateway(
        AsyncWebClient(token="xoxb-test", base_url=fs.base_url),
        limits=Limits(burst_seconds=1.0, per_minute=ceiling, spare=1.0),
    )
    people = 20
    started = time.monotonic()
    sent = await asyncio.gather(
        *(gateway.post(f"U{i:04d}", "hi") for i in range(people)),
        *(gateway.post("CONE", f"escalation {i}") for i in range(6)),
    )
    took = time.monotonic() - started
    assert len(sent) == people + 6 and fs.rate_limited == 0
    # 5 a second with 5 saved up (4 used); CONE: 1 a second with 3 saved up (2 used).
    assert took >= max((people + 6 - 4) / 5.0, (6 - 2) / 1.0) * 0.9, took
    # Each post to a user id landed in their DM, whose id is kept for updates.
    assert all(gateway.dm_target(f"U{i:04d}") == f"DU{i:04d}" for i in range(people))


async def test_a_429_holds_its_own_method_only(fs: FakeSlack) -> None:
    gateway = SlackGateway(AsyncWebClient(token="xoxb-test", base_url=fs.base_url),
                           limits=Limits(spare=1.0))  # fmt: skip
    fs.fail_next("users.lookupByEmail", status=429, retry_after=30)
    with pytest.raises(SlackRetryLater) as refused:
        await gateway.lookup_user("u1@example.com")
    assert refused.value.refused and refused.value.retry_after == 30.0
    assert refused.value.spends_attempt is False  # "not yet", never a failed attempt

    # Other methods go on at once: opening a DM, posting, looking someone up by id.
    started = time.monotonic()
    await gateway.open_dm("U0002")
    await gateway.post("CONE", "escalation")
    assert await gateway.lookup_user("U0003") is not None
    assert time.monotonic() - started < 10.0  # not held for the 30 s
    # users.lookupByEmail itself waits out Slack's Retry-After.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(gateway.lookup_user("u4@example.com"), 0.5)
    assert len(fs.calls_to("users.lookupByEmail")) == 1


async def test_a_429_on_a_channel_holds_that_channel_only(fs: FakeSlack) -> None:
    gateway = SlackGateway(AsyncWebClient(token="xoxb-test", base_url=fs.base_url),
                           limits=Limits(spare=1.0))  # fmt: skip
    fs.fail_next("chat.postMessage", status=429, retry_after=30)
    with pytest.raises(SlackRetryLater):
        await gateway.post("CONE", "first")
    started = time.monotonic()
    await gateway.post("CTWO", "elsewhere")
    await gateway.post("U0005", "a DM")
    assert time.monotonic() - started < 10.0  # not held for the 30 s
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(gateway.post("CONE", "again"), 0.5)


def test_configured_limits_override_slacks_floor() -> None:
    settings = Settings.model_validate(
        {"slack": {"rate_limits": {"users.lookupByEmail": 600, "chat.postMessage": 1200}}}
    )
    limits = Limits(per_minute=dict(settings.slack.rate_limits))
    methods = ("users.lookupByEmail", "chat.postMessage", "conversations.open")
    lookups, posts, opens = (limits.method(m) for m in methods)
    assert lookups is not None and lookups.rate == pytest.approx(10.0)
    assert posts is not None and posts.rate == pytest.approx(20.0)  # the workspace ceiling
    assert opens is not None and opens.rate == pytest.approx(50 / 60)  # Tier 3, untouched
    assert limits.channel("CONE").rate == pytest.approx(1.0)  # Slack's one a second
    faster = Limits(per_minute={"chat.postMessage.channel": 120}).channel("CONE")
    assert faster.rate == pytest.approx(2.0)
    users_list = Limits().method("users.list")
    assert users_list is not None and users_list.rate == pytest.approx(20 / 60)  # Tier 2
    for bad in ({"users.lookupByEmail": 0}, {"not a method": 5}):
        with pytest.raises(ValidationError):
            Settings.model_validate({"slack": {"rate_limits": bad}})


async def test_each_workspace_of_an_org_has_its_own_allowance(fs: FakeSlack) -> None:
    """Slack counts a method's tier per workspace: on an org-wide install a 429 for one
    workspace's users.list holds that workspace's pages only, never another's."""
    gateway = SlackGateway(AsyncWebClient(token="xoxb-test", base_url=fs.base_url),
                           limits=Limits(spare=1.0))  # fmt: skip
    gateway.workspaces = frozenset({"T0EUROPE", "T0AMERICA"})
    fs.fail_next("users.list", status=429, retry_after=30)
    with pytest.raises(SlackRetryLater):
        await gateway._call("users.list", team_id="T0EUROPE", limit="1")
    started = time.monotonic()
    await gateway._call("users.list", team_id="T0AMERICA", limit="1")
    assert time.monotonic() - started < 10.0  # not held for the 30 s
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(gateway._call("users.list", team_id="T0EUROPE", limit="1"), 0.5)


def test_one_workspace_has_one_allowance_however_a_call_names_it() -> None:
    limits = Limits()
    assert limits.method("users.list", "T0EUROPE") is not limits.method("users.list", "T0AMERICA")
    assert limits.method("users.list") is limits.method("users.list", None)


def test_a_call_with_the_apps_own_token_spends_the_apps_own_allowance() -> None:
    """Asking with slack.bot_token about someone of another workspace (a lookup tried in each
    workspace in turn) is a call to the app's own workspace, not to theirs."""
    from securitybot.slack.gateway import SlackUser

    gateway = SlackGateway(AsyncWebClient(token="xoxb-test"), limits=Limits())
    gateway.workspaces = frozenset({"T0EUROPE", "T0AMERICA"})
    bob = SlackUser(id="UBOB", name="bob", real_name="Bob", first_name="Bob",
                    email="bob@example.com", tz=None, is_bot=False, deleted=False,
                    teams=("T0EUROPE",))  # fmt: skip
    gateway._cache["UBOB"] = (time.monotonic(), bob)
    assert gateway._bucket_team(gateway._workspace_of({"user": "UBOB"}, None)) == "T0EUROPE"
    assert gateway._bucket_team(gateway._workspace_of({"user": "UBOB"}, "")) is None
