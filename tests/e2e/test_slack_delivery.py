"""Slack's re-deliveries and replayed requests: each delivery is handled once, and quickly."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from prometheus_client import REGISTRY

from securitybot.demo import FakeDuo, FakeSlack, block_action_body, message_event_body
from securitybot.flows import events
from securitybot.slack import listeners
from securitybot.slack.messages import CLAIM_ACTION, CONFIRM_ACTION, DENY_ACTION
from securitybot.store.models import SlackReceipt
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import SECURITY_CHANNEL, Bot, e2e_settings, running_bot, wait_until

RESPONDERS = {"escalation": {"responders": ["UBOB"]}}


def _duplicates(kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "securitybot_slack_duplicate_deliveries_total", {"kind": kind}
    )
    return value or 0.0


def _duo_auths(bot: Bot) -> int:
    return len([r for r in bot.fd.requests if r.path == "/auth/v2/auth"])


def _two_open_alerts(bot: Bot) -> tuple[int, int]:
    first = bot.post_alert(dedup_key="redeliver-1")["id"]
    bot.wait_status(first, "awaiting_ack")
    # Another kind, so the two are separate conversations rather than one group.
    second = bot.post_alert(dedup_key="redeliver-2", kind="default",
                            title="flurb -export on payrollserver02")["id"]  # fmt: skip
    bot.wait_status(second, "awaiting_ack")
    return first, second


def test_slacks_retry_of_a_yes_never_answers_the_next_alert(bot: Bot) -> None:
    first, second = _two_open_alerts(bot)
    yes = message_event_body(user="UALICE", text="yes", channel="DUALICE")
    assert bot.slack_post(yes).status_code == 200
    bot.wait_status(first, "awaiting_2fa")
    bot.wait_reply("UALICE")

    before = _duplicates("event_callback")
    retried = bot.slack_post(yes, retry=1)  # Slack thought we were slow: same event_id

    assert retried.status_code == 200
    assert _duplicates("event_callback") == before + 1
    assert bot.alert(second)["status"] == "awaiting_ack"
    assert bot.fd.wait_for_push(timeout=10).pushinfo["Alert id"] == str(first)
    assert _duo_auths(bot) == 1
    assert len(bot.replies("UALICE")) == 1


def test_a_retry_of_an_event_never_seen_is_handled(bot: Bot) -> None:
    alert_id = bot.post_alert(dedup_key="first-seen-as-retry")["id"]
    bot.wait_status(alert_id, "awaiting_ack")
    # The first delivery never reached us (connection failed); the retry is all we get.
    no = message_event_body(user="UALICE", text="no", channel="DUALICE")
    assert bot.slack_post(no, retry=1).status_code == 200
    bot.wait_reply("UALICE")  # handled: "are you sure?"
    assert bot.say("UALICE", "confirm").status_code == 200
    assert bot.wait_status(alert_id, "escalated")["escalation_reason"] == "not_me"


def test_a_replayed_click_has_one_effect(bot: Bot) -> None:
    alert_id = bot.post_alert(dedup_key="replayed-click")["id"]
    bot.wait_status(alert_id, "awaiting_ack")
    click = block_action_body(user="UALICE", action_id=CONFIRM_ACTION, value=str(alert_id),
                              channel="DUALICE", message_ts="1.0")  # fmt: skip
    assert bot.slack_post(click).status_code == 200
    bot.wait_status(alert_id, "awaiting_2fa")
    wait_until(lambda: bot.fs.ephemeral, what="the click's ephemeral reply")

    before = _duplicates("block_actions")
    assert bot.slack_post(click).status_code == 200  # the same signed request, replayed

    assert _duplicates("block_actions") == before + 1
    assert len(bot.fs.ephemeral) == 1
    assert len(bot.audit(alert_id, "alert.user_confirmed")) == 1
    assert bot.fd.wait_for_push(timeout=10).pushinfo["Alert id"] == str(alert_id)
    assert _duo_auths(bot) == 1


def test_a_replayed_triage_click_is_ignored_too(make_bot: MakeBot) -> None:
    bot = make_bot(**RESPONDERS)
    alert_id = bot.post_alert(dedup_key="replayed-claim")["id"]
    bot.wait_status(alert_id, "awaiting_ack")
    bot.click("UALICE", DENY_ACTION, alert_id)
    bot.wait_status(alert_id, "escalated")
    claim = block_action_body(user="UBOB", action_id=CLAIM_ACTION, value=str(alert_id),
                              channel=SECURITY_CHANNEL, message_ts="1.0")  # fmt: skip
    assert bot.slack_post(claim).status_code == 200
    bot.wait_status(alert_id, "triaging")

    before = _duplicates("block_actions")
    assert bot.slack_post(claim, retry=1).status_code == 200

    assert _duplicates("block_actions") == before + 1
    assert len(bot.audit(alert_id, "alert.claimed")) == 1
    assert bot.audit(alert_id, "event_ignored.claimed") == []


def test_receipts_survive_a_restart(db_url: str, fs: FakeSlack, fd: FakeDuo) -> None:
    settings = e2e_settings(db_url, fs, fd)
    yes = message_event_body(user="UALICE", text="yes", channel="DUALICE")
    with running_bot(settings, fs, fd) as bot:
        first, second = _two_open_alerts(bot)
        bot.slack_post(yes)
        bot.wait_status(first, "awaiting_2fa")
        bot.wait_reply("UALICE")

    with running_bot(settings, fs, fd) as restarted:
        before = _duplicates("event_callback")
        assert restarted.slack_post(yes, retry=2).status_code == 200
        assert _duplicates("event_callback") == before + 1
        assert restarted.alert(second)["status"] == "awaiting_ack"
        with restarted.db.read() as session:
            assert session.get(SlackReceipt, f"event:{_event_id(yes)}") is not None


def _event_id(body: str) -> str:
    return str(json.loads(body)["event_id"])


@pytest.fixture
def slow_answers(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Answers block in the database until the test lets them through."""
    release = threading.Event()
    real = events.apply_by_id

    def held(*args: Any, **kwargs: Any) -> Any:
        release.wait(timeout=30)
        return real(*args, **kwargs)

    monkeypatch.setattr(listeners, "apply_by_id", held)
    return release


def test_slack_gets_its_200_before_the_slow_work_is_done(
    bot: Bot, slow_answers: threading.Event
) -> None:
    alert_id = bot.post_alert(dedup_key="slow-answer")["id"]
    bot.wait_status(alert_id, "awaiting_ack")
    try:
        assert bot.say("UALICE", "yes").status_code == 200
        click = bot.click("UALICE", CONFIRM_ACTION, alert_id)
        assert click.status_code == 200
        # Both were acknowledged while the answer is still held in the "database".
        assert bot.alert(alert_id)["status"] == "awaiting_ack"
    finally:
        slow_answers.set()
    bot.wait_status(alert_id, "awaiting_2fa")
    assert bot.fd.wait_for_push(timeout=10).pushinfo["Alert id"] == str(alert_id)


def test_the_bots_own_dm_messages_are_acknowledged_without_a_receipt(bot: Bot) -> None:
    # Slack echoes the bot's own DM posts back as message.im events.
    own = json.loads(message_event_body(user="UBOT", text="Hi Alice", channel="DUALICE"))
    own["event"]["bot_id"] = "BBOT"
    body = json.dumps(own)

    assert bot.slack_post(body).status_code == 200

    with bot.db.read() as session:
        assert session.get(SlackReceipt, f"event:{own['event_id']}") is None
    assert bot.replies("UALICE") == []
