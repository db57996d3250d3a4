"""Nothing doubled under faults: every alert of a burst gets exactly one DM and one escalation,
while the database keeps dropping the service's connections, or the process is killed -9.

The service runs as a real subprocess; the Slack fake in the test process counts what Slack
accepted over every lifetime of the service. Nobody answers, so every alert escalates.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from bench.faults import (
    ConnectionKiller,
    Counts,
    add_users,
    count_deliveries,
    deliveries_pending,
    escalated,
    post_burst,
    slow_posts,
    with_application_name,
)
from securitybot.demo import FakeDuo, FakeSlack
from securitybot.flows import dm_batch
from securitybot.flows.conversation import ConversationHandlers
from securitybot.slack.tiers import lifted
from tests.dbs import postgres_schema_url
from tests.e2e.harness import TOKEN, Bot, ok_calls, wait_until
from tests.e2e.test_crash_recovery import subprocess_bot

# Enough alerts that each fault lands while DMs and escalation posts are under way (the kill
# test checks it did); more only add minutes (bench/faults.py runs thousands).
ALERTS = 150
# A job is run again once its outbox lease is out: on PostgreSQL after a kill -9 (SQLite releases
# them at start-up), and when a killed connection lost its outcome. 4 s rather than the default
# 10: renewed every third, a job in flight still keeps its lease on a loaded machine.
LEASE = 4
NEVER_RETRIEVED = "Task exception was never retrieved"


# A burst of one detection for every person: exactly-once is tested here, not the storm guard.
NOT_A_STORM = {"max_people": 1_000_000}
# The fake Slack here enforces no limits (exactly-once is tested, not pacing), so neither does
# the bot: 300 DMs, 300 escalations into one channel and the history lookups of every job a
# fault cut short need not take Slack's minutes.
UNLIMITED_SLACK = {"rate_limits": lifted()}


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


def _dms(fs: FakeSlack) -> int:
    return sum(count_deliveries(fs, ALERTS).dms.values())


def _escalations(fs: FakeSlack) -> int:
    return sum(count_deliveries(fs, ALERTS).escalations.values())


def _settled(fs: FakeSlack, db_url: str, alerts: int) -> Counts:
    """Wait until every alert escalated and its post landed, then count what Slack holds."""
    wait_until(lambda: escalated(db_url) >= alerts, 90, f"{alerts} escalations")
    wait_until(
        lambda: len(count_deliveries(fs, alerts).escalations) >= alerts, 30, "escalation posts"
    )
    # Nothing left that could post: a late duplicate would already be at the fake Slack.
    wait_until(lambda: deliveries_pending(db_url) == 0, 30, "no delivery job pending")
    return count_deliveries(fs, alerts)


def _doubled(fs: FakeSlack, counts: Counts) -> list[tuple[str, Any, float]]:
    """(channel, delivery tag, time) of every post in a channel that got more than one DM."""
    twice = {ch for ch, n in counts.dms.items() if n > 1}
    return [
        (str(c.response["channel"]), (c.params.get("metadata") or {}).get("event_payload"), c.at)
        for c in ok_calls(fs, "chat.postMessage")
        if c.response.get("channel") in twice and c.params.get("blocks")
    ]


def _assert_once_each(counts: Counts, log: str, fs: FakeSlack) -> None:
    print(counts.summary())  # the fault counts for the record (pytest -s)
    assert len(counts.dms) == counts.alerts and set(counts.dms.values()) == {1}, (
        counts.summary(),
        _doubled(fs, counts),
    )
    assert len(counts.escalations) == counts.alerts, counts.summary()
    assert set(counts.escalations.values()) == {1}, counts.summary()
    assert set(counts.reminders.values()) <= {1}, counts.summary()
    assert NEVER_RETRIEVED not in log


def test_connections_killed_during_a_burst_double_no_dm_and_no_escalation(
    pg_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path
) -> None:
    add_users(fs, ALERTS)
    slow_posts(fs, 0.02)
    name = "sb-faults-" + uuid.uuid4().hex[:8]
    with subprocess_bot(
        pg_url, fs, fd, tmp_path, database={"url": with_application_name(pg_url, name)},
        # Short, so the escalation posts soon follow the DMs under the killer.
        policy={"ack_timeout": 3}, ingest={"rate_limit": {"rate": 100000, "burst": 100000}},
        storm=NOT_A_STORM, slack=UNLIMITED_SLACK,
        # A job whose outcome a killed connection lost runs again once its lease is out.
        scheduler={"sweep_interval": 0.2, "outbox_lease": LEASE},
    ) as (bot, server):  # fmt: skip
        with ConnectionKiller(pg_url, name, every=0.5) as killer:
            post_burst(bot.base, TOKEN, ALERTS)
            # Through the DMs and into the escalation posts, then let the service settle. This
            # checks exactly-once, not speed: under the killer progress varies, so the wait is long.
            wait_until(lambda: _escalations(fs) >= ALERTS // 3, 90, "a third of the escalations")
        assert killer.killed > 0
        counts = _settled(fs, pg_url, ALERTS)
    _assert_once_each(counts, server.log.read_text(), fs)


def test_kill_9_during_a_burst_doubles_no_dm_and_no_escalation(
    db_url: str, fs: FakeSlack, fd: FakeDuo, tmp_path: Path
) -> None:
    add_users(fs, ALERTS)
    slow_posts(fs, 0.05)  # a wide window between Slack storing a post and the bot hearing so

    with subprocess_bot(
        db_url, fs, fd, tmp_path, policy={"ack_timeout": 6},
        ingest={"rate_limit": {"rate": 100000, "burst": 100000}}, storm=NOT_A_STORM,
        slack=UNLIMITED_SLACK, scheduler={"sweep_interval": 0.2, "outbox_lease": LEASE},
    ) as (bot, server), ThreadPoolExecutor(1) as sender:  # fmt: skip
        # The burst goes on while the bot is killed: its sender retries with the same dedup
        # keys until the restarted bot answers, so the kill lands mid-way by construction.
        burst = sender.submit(post_burst, bot.base, TOKEN, ALERTS, patience=180)
        wait_until(lambda: _dms(fs) >= ALERTS // 3, 60, "a third of the DMs")
        server.kill()
        assert _dms(fs) < ALERTS, "the kill came after the last DM"
        server.start()
        burst.result()
        wait_until(lambda: _escalations(fs) >= ALERTS // 3, 60, "a third of the escalations")
        server.kill()
        assert _escalations(fs) < ALERTS, "the kill came after the last escalation post"
        server.start()
        counts = _settled(fs, db_url, ALERTS)
    _assert_once_each(counts, server.log.read_text(), fs)


def _lost_connection() -> OperationalError:
    return OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"),
                            connection_invalidated=True)  # fmt: skip


def test_a_dm_whose_recording_was_lost_is_found_in_slack_not_posted_again(
    bot: Bot, fs: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    finish_dms = dm_batch.finish_dms

    def loses_the_first_dm_sent(db: Any, sent: Any, *args: Any, **kwargs: Any) -> Any:
        if not lost and sent:
            lost.extend(s.alert_id for s in sent)  # the DM is out, but recording it never commits
            raise _lost_connection()
        return finish_dms(db, sent, *args, **kwargs)

    lost: list[int] = []
    monkeypatch.setattr(dm_batch, "finish_dms", loses_the_first_dm_sent)
    alert_id = bot.post_alert(dedup_key="lost-dm")["id"]
    bot.wait_status(alert_id, "awaiting_ack")
    assert lost == [alert_id]
    [dm] = bot.dms("UALICE")
    assert bot.row(alert_id).dm_ts == dm.response["ts"]  # the retry recorded the first DM
    assert dm.params["metadata"]["event_payload"]["alert_id"] == alert_id
    assert len(ok_calls(fs, "conversations.history", "DUALICE")) == 1

    # A first attempt cannot have posted before, so it does not pay for a history lookup.
    bob_alert = bot.post_alert(dedup_key="bob-dm", user="bob@example.com")["id"]
    bot.wait_status(bob_alert, "awaiting_ack")
    assert len(bot.dms("UBOB")) == 1
    assert ok_calls(fs, "conversations.history", "DUBOB") == []


def test_an_escalation_whose_ts_was_lost_is_found_in_slack_not_posted_again(
    bot: Bot, fs: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_values = ConversationHandlers._set
    lost: list[int] = []

    def loses_the_first_escalation_ts(self: Any, alert_id: int, **values: Any) -> None:
        if "escalation_ts" in values and not lost:
            lost.append(alert_id)
            raise _lost_connection()
        set_values(self, alert_id, **values)

    monkeypatch.setattr(ConversationHandlers, "_set", loses_the_first_escalation_ts)
    alert_id = bot.post_alert(dedup_key="lost-escalation", user="nobody@example.com")["id"]
    bot.wait_status(alert_id, "escalated")
    ts = wait_until(lambda: bot.row(alert_id).escalation_ts, what="the escalation ts")
    assert lost == [alert_id]
    [post] = bot.security_posts()
    assert ts == post.response["ts"]


def test_a_post_whose_reply_was_lost_is_not_blindly_sent_again(bot: Bot, fs: FakeSlack) -> None:
    fs.lose_next_reply("chat.postMessage")  # Slack posts the DM, the answer never arrives
    alert_id = bot.post_alert(dedup_key="lost-reply")["id"]
    bot.wait_status(alert_id, "awaiting_ack")
    [dm] = bot.dms("UALICE")
    assert bot.row(alert_id).dm_ts == dm.response["ts"]


def test_a_rate_limited_post_is_retried_without_a_history_lookup(bot: Bot, fs: FakeSlack) -> None:
    # A 429 is Slack saying it posted nothing: looking in history (Tier 3) would only spend the
    # budget that is already short.
    fs.fail_next("chat.postMessage", status=429, retry_after=1)
    alert_id = bot.post_alert(dedup_key="rate-limited-dm")["id"]
    bot.wait_status(alert_id, "awaiting_ack")
    assert len(bot.dms("UALICE")) == 1
    assert ok_calls(fs, "conversations.history") == []
