"""Duo as it really behaves: auth_status long-polls, users report fraud, and Duo's other
answers never pass for an approval. Real server, real duo_client, fake Duo over TLS."""

from __future__ import annotations

import json
import time

from securitybot.demo import FakeDuo
from securitybot.slack.messages import CONFIRM_ACTION
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import Bot, ok_calls, wait_until


def _pushed(bot: Bot, key: str) -> tuple[int, str]:
    """Alice's alert, confirmed in Slack, with the Duo push on her phone."""
    alert_id = int(bot.post_alert(dedup_key=key)["id"])
    bot.wait_status(alert_id, "awaiting_ack")
    bot.click("UALICE", CONFIRM_ACTION, alert_id)
    push = bot.fd.wait_for_push(timeout=10)
    bot.wait_status(alert_id, "awaiting_2fa")
    return alert_id, push.txid


def _status_polls(fd: FakeDuo) -> int:
    return len([r for r in fd.requests if r.path == "/auth/v2/auth_status"])


def test_a_push_approved_long_after_the_request_timeout_resolves(make_bot: MakeBot) -> None:
    # Scaled down from "duo.timeout 10 s, approved after 20 s": every poll is held far longer
    # than duo.timeout, as Duo holds auth_status until the phone answers.
    bot = make_bot(duo={"timeout": 0.25})
    bot.fd.status_delay = 30.0
    alert_id, txid = _pushed(bot, "slow-approval")
    wait_until(lambda: _status_polls(bot.fd) >= 1, what="the first auth_status")
    # Long enough for three polls each cut off by a 0.25 s timeout (with the retry backoff),
    # which is how the old client turned a slow approval into duo_error.
    time.sleep(6.5)
    bot.fd.answer_push(txid, "allow")

    done = bot.wait_status(alert_id, "resolved", "escalated")
    assert (done["status"], done["outcome"], done["duo_result"]) == (
        "resolved",
        "confirmed",
        "duo_approved",
    )
    assert not bot.audit(alert_id, "alert.duo_error")
    assert _status_polls(bot.fd) <= 3  # one immediate status, then one long-poll held open


def test_a_push_reported_as_fraud_escalates_as_critical_and_mentions_on_call(
    make_bot: MakeBot,
) -> None:
    # The kind is "high" and only "low" would mention: fraud mentions and reads critical anyway.
    bot = make_bot(escalation={"mention": "S0ONCALL", "mention_severities": ["low"]})
    alert_id, txid = _pushed(bot, "fraud")
    bot.fd.answer_push(txid, "fraud")

    escalated = bot.wait_status(alert_id, "escalated")
    assert escalated["escalation_reason"] == "duo_fraud"
    assert escalated["duo_result"] == "duo_fraud"
    assert escalated["user_answer"] == "confirmed" and escalated["outcome"] is None
    post = bot.wait_security_post()
    assert post.params["text"].startswith(f"[CRITICAL] Escalated alert #{alert_id}:")
    assert "(duo_fraud)" in post.params["text"]
    blocks = json.dumps(post.params["blocks"])
    assert "<!subteam^S0ONCALL>" in blocks
    assert "CRITICAL" in post.params["blocks"][0]["text"]["text"]
    assert "*Severity:* critical" in blocks
    assert "reported the Duo push as *fraud*" in blocks
    assert "Duo push reported as *fraud* by the user" in blocks  # the timeline
    update = wait_until(lambda: ok_calls(bot.fs, "chat.update", "DUALICE"), what="DM update")
    assert "You reported the Duo push as fraudulent" in update[0].params["text"]


def test_a_push_duo_waves_through_as_bypass_is_never_an_approval(bot: Bot) -> None:
    alert_id, txid = _pushed(bot, "bypass-at-poll")
    bot.fd.answer_push(txid, "bypass")  # a bypass policy applied after the push was sent
    escalated = bot.wait_status(alert_id, "escalated", "resolved")
    assert escalated["status"] == "escalated"
    assert escalated["escalation_reason"] == "duo_not_enrolled"
    assert "(duo_not_enrolled)" in bot.wait_security_post().params["text"]


def test_a_locked_out_user_escalates_as_duo_denied(bot: Bot) -> None:
    alert_id, txid = _pushed(bot, "locked-out")
    bot.fd.answer_push(txid, "locked_out")
    escalated = bot.wait_status(alert_id, "escalated")
    assert escalated["escalation_reason"] == "duo_denied"
    row = bot.audit(alert_id, "alert.duo_denied")[0]
    assert "locked_out" in json.dumps(row.details)


def test_the_push_deadline_escalates_while_duo_still_holds_the_poll(make_bot: MakeBot) -> None:
    # No cap on the hold: like Duo, the poll stays open until the push times out (a minute),
    # far beyond policy.duo_timeout. The escalation must not queue behind it.
    bot = make_bot(policy={"duo_timeout": 2})
    alert_id, _txid = _pushed(bot, "deadline-mid-poll")
    wait_until(lambda: _status_polls(bot.fd) >= 1, what="the first auth_status")

    escalated = bot.wait_status(alert_id, "escalated", timeout=10)
    assert escalated["escalation_reason"] == "duo_timeout"
    assert "(duo_timeout)" in bot.wait_security_post(timeout=10).params["text"]
    assert bot.fd.pending_pushes()  # Duo is still holding the poll open


def test_a_fraud_report_after_the_deadline_reaches_the_team(make_bot: MakeBot) -> None:
    bot = make_bot(policy={"duo_timeout": 1})
    alert_id, txid = _pushed(bot, "late-fraud")
    assert bot.wait_status(alert_id, "escalated")["escalation_reason"] == "duo_timeout"
    bot.wait_security_post()
    bot.fd.answer_push(txid, "fraud")  # the phone was in a pocket; then the user saw it

    wait_until(lambda: bot.audit(alert_id, "alert.duo_fraud"), what="the late fraud report")
    late = bot.alert(alert_id)
    assert (late["status"], late["escalation_reason"], late["duo_result"]) == (
        "escalated",
        "duo_timeout",
        "duo_fraud",
    )
    updated = wait_until(
        lambda: [
            c
            for c in ok_calls(bot.fs, "chat.update", "CSECURITY")
            if "reported as *fraud*" in json.dumps(c.params["blocks"])
        ],
        what="the escalation post updated with the fraud report",
    )
    assert updated and len(bot.security_posts()) == 1
