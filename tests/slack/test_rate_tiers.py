"""Slack's rate tiers: the fake enforces them as Slack does, and a burst is spread, not stormed.

Limits are scaled up (Limits(scale=...)) so a minute's worth happens in about a second; the
shape is Slack's: per-method tiers, one post a second per channel, 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from securitybot.demo import FakeSlack
from securitybot.slack import gateway as gateway_module
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


async def test_a_burst_is_spread_to_the_tier_after_the_first_429(fs: FakeSlack) -> None:
    gateway = SlackGateway(AsyncWebClient(token="xoxb-test", base_url=fs.base_url),
                           limits=_limits())  # fmt: skip
    await _open_all(gateway)
    assert len(gateway._dms) == USERS
    # The first wave finds the limit (each call refused at most once); the retries keep to it.
    assert fs.rate_limited <= USERS - 5, fs.rate_limited


async def test_without_pacing_the_same_burst_storms(
    fs: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway_module, "PACE_FOR", 0.0)
    gateway = SlackGateway(AsyncWebClient(token="xoxb-test", base_url=fs.base_url),
                           limits=_limits())  # fmt: skip
    await _open_all(gateway)
    assert fs.rate_limited > USERS, fs.rate_limited
