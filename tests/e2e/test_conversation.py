"""The whole conversation through real sockets: API -> bot -> fake Slack and second factor
(Duo, Okta Verify) -> state. Every story runs against both providers."""

from __future__ import annotations

import pytest

from securitybot.demo import FakeDuo
from securitybot.slack.messages import CONFIRM_ACTION, DENY_ACTION
from tests.e2e.harness import SECURITY_CHANNEL, VERIFIERS, Bot, ok_calls, wait_until

pytestmark = pytest.mark.parametrize("verifier", VERIFIERS, indirect=True)


def test_alice_confirms_and_approves_the_push_so_the_alert_resolves(bot: Bot) -> None:
    alert = bot.post_alert(dedup_key="happy-1")
    dm = bot.fs.wait_for("chat.postMessage", timeout=10)[0]
    # One call: posted to Alice's user id, Slack opens the DM and answers with its id.
    assert (dm.params["channel"], dm.response["channel"]) == ("UALICE", "DUALICE")
    assert not bot.fs.calls_to("conversations.open")
    assert "Hi Alice" in str(dm.params["blocks"])
    bot.wait_status(alert["id"], "awaiting_ack")

    resp = bot.click("UALICE", CONFIRM_ACTION, alert["id"])
    assert resp.status_code == 200
    push = bot.fd.wait_for_push(timeout=10)
    assert push.username == bot.push_user("alice@example.com")
    bot.wait_status(alert["id"], "awaiting_2fa")
    bot.fd.answer_push(push.txid, "allow")

    done = bot.wait_status(alert["id"], "resolved")
    assert done["outcome"] == "confirmed"
    update = bot.fs.wait_for("chat.update", timeout=10)[0]
    assert CONFIRM_ACTION not in str(update.params["blocks"])  # answer buttons gone
    assert "snooze_1h" in str(update.params["blocks"])  # the kind allows snoozing
    assert not [
        c for c in bot.fs.calls_to("chat.postMessage") if c.params["channel"] == SECURITY_CHANNEL
    ]


def test_alice_says_not_me_so_the_team_is_told(bot: Bot) -> None:
    alert = bot.post_alert(dedup_key="deny-1")
    bot.wait_status(alert["id"], "awaiting_ack")
    bot.click("UALICE", DENY_ACTION, alert["id"])
    escalated = bot.wait_status(alert["id"], "escalated")
    assert escalated["escalation_reason"] == "not_me"
    posts = [c for c in bot.fs.wait_for("chat.postMessage", count=2, timeout=10)
             if c.params["channel"] == SECURITY_CHANNEL]  # fmt: skip
    assert posts and "not_me" in posts[0].params["text"]


def test_alice_confirms_but_denies_the_push_so_the_team_is_told(bot: Bot) -> None:
    alert = bot.post_alert(dedup_key="duo-deny-1")
    bot.wait_status(alert["id"], "awaiting_ack")
    bot.click("UALICE", CONFIRM_ACTION, alert["id"])
    push = bot.fd.wait_for_push(timeout=10)
    assert push.username == bot.push_user("alice@example.com")
    if isinstance(bot.fd, FakeDuo):  # Okta's push has no room for extra lines
        assert push.pushinfo["Alert id"] == str(alert["id"])
    bot.wait_status(alert["id"], "awaiting_2fa")
    bot.fd.answer_push(push.txid, "deny")

    escalated = bot.wait_status(alert["id"], "escalated")
    assert escalated["escalation_reason"] == "duo_denied"
    assert escalated["duo_result"] == "duo_denied"
    assert escalated["user_answer"] == "confirmed"
    assert escalated["outcome"] is None
    post = bot.wait_security_post()
    assert post.params["text"].startswith(f"[HIGH] Escalated alert #{alert['id']}:")
    assert "(duo_denied)" in post.params["text"]
    assert f"the {bot.provider} push was denied" in str(post.params["blocks"])
    assert f"{bot.provider} push *denied*" in str(post.params["blocks"])  # the timeline
    update = wait_until(lambda: ok_calls(bot.fs, "chat.update", "DUALICE"), what="DM update")
    assert len(update) == 1
    assert f"The {bot.provider} push was denied" in update[0].params["text"]
    assert CONFIRM_ACTION not in str(update[0].params["blocks"])  # buttons gone
    assert update[0].params["ts"] == bot.dms("UALICE")[0].response["ts"]  # the DM itself
    assert len(bot.dms("UALICE")) == 1
    assert len(bot.security_posts()) == 1
    assert len(bot.fd.started_pushes()) == 1
