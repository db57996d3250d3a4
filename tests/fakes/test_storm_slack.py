"""bench/storm_slack.py enforces Slack's documented limits as Slack does: HTTP 429, Retry-After
and {"ok": false, "error": "ratelimited"} past a method's tier burst, per method independently,
per channel for posts, and past the workspace-wide post ceiling; scaled in time."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from slack_sdk import WebClient

from bench.storm import lower_bound
from bench.storm_slack import StormLimits, StormSlack

TOKEN = {"Authorization": "Bearer xoxb-test"}


@pytest.fixture
def fs() -> Iterator[StormSlack]:
    # Slack's time 1,000 times slower: what refills while a slow machine makes the calls is
    # negligible, and the burst is the same number of calls at any scale.
    with StormSlack(scale=0.001) as fake:
        for i in range(60):
            fake.add_user(f"U{i:04d}", f"u{i}@example.com", f"User {i}")
        fake.add_channel("CSEC")
        fake.add_channel("COTHER")
        yield fake


def call(fs: StormSlack, method: str, **params: str) -> httpx.Response:
    return httpx.post(fs.base_url + method, data=params, headers=TOKEN, timeout=5)


def until_refused(fs: StormSlack, method: str, **params: str) -> tuple[int, httpx.Response]:
    """Call ``method`` until Slack refuses: (calls answered ok, the refusal)."""
    for n in range(200):
        resp = call(fs, method, **params)
        if resp.status_code == 429:
            return n, resp
        assert resp.json()["ok"], resp.json()
    raise AssertionError(f"{method} never rate limited")


def assert_ratelimited(resp: httpx.Response) -> float:
    assert resp.status_code == 429
    assert resp.json() == {"ok": False, "error": "ratelimited"}
    retry = float(resp.headers["Retry-After"])
    assert retry >= 1000.0  # at least one whole Slack-second, at scale 0.001
    return retry


@pytest.mark.parametrize(("method", "params", "per_minute"), [
    ("users.list", {"limit": "1"}, 20),  # Tier 2
    ("conversations.open", {"users": "U0001"}, 50),  # Tier 3
    ("users.lookupByEmail", {"email": "u1@example.com"}, 50),  # Tier 3
    ("users.info", {"user": "U0001"}, 100),  # Tier 4
])  # fmt: skip
def test_a_method_is_refused_past_its_tier_burst(
    fs: StormSlack, method: str, params: dict[str, str], per_minute: int
) -> None:
    ok, refusal = until_refused(fs, method, **params)
    # Limits' burst: 10 seconds of the tier's rate.
    assert ok == int(per_minute / 60 * 10)
    assert_ratelimited(refusal)


def test_each_method_has_its_own_bucket(fs: StormSlack) -> None:
    until_refused(fs, "conversations.open", users="U0001")
    # Another Tier 3 method is not held by conversations.open's limit.
    resp = call(fs, "users.lookupByEmail", email="u2@example.com")
    assert resp.status_code == 200 and resp.json()["user"]["id"] == "U0002"
    assert call(fs, "conversations.open", users="U0002").status_code == 429
    _, limited = fs.counts()
    assert limited == {"conversations.open": 2}


def test_posts_are_limited_per_channel(fs: StormSlack) -> None:
    ok, refusal = until_refused(fs, "chat.postMessage", channel="CSEC", text="hi")
    assert ok == 3  # Limits.post_burst: a short burst, then one a second
    assert_ratelimited(refusal)
    assert call(fs, "chat.postMessage", channel="COTHER", text="hi").json()["ok"]
    # A post to a user id lands in the app's DM with them, answered with the D… id.
    resp = call(fs, "chat.postMessage", channel="U0003", text="hi")
    assert resp.json()["channel"] == "DU0003"
    assert fs.posts_to("CSEC") == 3 and set(fs.dm_at) == {"U0003"}


def test_posts_are_limited_per_workspace(fs: StormSlack) -> None:
    # 300 a minute, 10 seconds of it saved for a burst: 50 posts, each to its own DM.
    answers = [call(fs, "chat.postMessage", channel=f"U{i:04d}", text="hi") for i in range(51)]
    assert [a.status_code for a in answers] == [200] * 50 + [429]
    assert_ratelimited(answers[-1])
    assert len(fs.dm_at) == 50


def test_the_burst_is_the_same_number_of_calls_at_any_scale() -> None:
    for scale in (0.01, 1.0, 60.0):
        limits = StormLimits(scale)
        answers = [limits.try_call("conversations.open", None, 5.0) for _ in range(9)]
        assert answers[:8] == [0.0] * 8 and answers[8] > 0
        # ... and it refills at the scaled rate: 50 a Slack-minute.
        assert answers[8] == pytest.approx(
            (1 - limits.tiers.methods["conversations.open"].tokens) / (50 / 60 * scale)
        )


def test_retry_after_is_whole_slack_seconds_scaled_and_honest() -> None:
    with StormSlack(scale=4.0) as fs:  # users.list: 80 calls a real minute
        _, refusal = until_refused(fs, "users.list", limit="1")
        retry = float(refusal.headers["Retry-After"])
        assert 0 < retry < 1.0 and (retry * 4).is_integer()
        time.sleep(retry)
        assert call(fs, "users.list", limit="1").status_code == 200


def test_users_list_pages_with_cursors_as_slack_documents() -> None:
    with StormSlack(scale=1000.0) as fs:
        for i in range(2500):
            fs.add_user(f"U{i:05d}", f"u{i}@example.com", f"User {i}")
        client = WebClient(token="xoxb-test", base_url=fs.base_url)
        pages = [client.users_list(limit=1000) for _ in range(1)]
        while cursor := pages[-1]["response_metadata"]["next_cursor"]:
            pages.append(client.users_list(limit=1000, cursor=cursor))
        assert [len(p["members"]) for p in pages] == [1000, 1000, 500]
        members = [m for p in pages for m in p["members"]]
        assert len({m["id"] for m in members}) == 2500
        assert members[0]["profile"]["email"] == "u0@example.com"
        assert call(fs, "users.list", limit="1001").json() == {
            "ok": False,
            "error": "invalid_limit",
        }


def test_the_lower_bound_follows_the_limits() -> None:
    # 600 posts at 300 a minute, the first 50 in the burst: 550 / 300 minutes.
    assert lower_bound(600, 600, 300) / 60 == pytest.approx(550 / 300)
    assert lower_bound(600, 600, 600) / 60 == pytest.approx(500 / 600)
    # A directory of 5,000 is five users.list pages of 1,000, at Tier 2 (one every 3 s once
    # the burst of 3.3 is spent): the 4,001st person is known 5 s in (posts unlimited here).
    assert lower_bound(4001, 5000, 1e9) == pytest.approx(5.0, abs=0.01)
