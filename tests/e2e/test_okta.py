"""Okta Verify as it really behaves, end to end: a push reported as "not me" is fraud, a
suspended user or a user without Okta Verify is never pushed, rate limits and outages fail
closed, and the team's post, the timeline and the metrics name Okta Verify.
Real server, real httpx, fake Okta over TLS checking the SSWS token."""

from __future__ import annotations

import json

import pytest

from securitybot.demo import FakeOkta
from securitybot.slack.messages import CONFIRM_ACTION
from tests.e2e.harness import Bot, ok_calls, wait_until

pytestmark = pytest.mark.parametrize("verifier", ["okta"], indirect=True)


def _confirmed(bot: Bot, key: str) -> int:
    alert_id = int(bot.post_alert(dedup_key=key)["id"])
    bot.wait_status(alert_id, "awaiting_ack")
    bot.click("UALICE", CONFIRM_ACTION, alert_id)
    return alert_id


def _okta(bot: Bot) -> FakeOkta:
    assert isinstance(bot.fd, FakeOkta)
    return bot.fd


def test_a_push_reported_as_not_me_escalates_as_fraud_and_names_okta_verify(bot: Bot) -> None:
    alert_id = _confirmed(bot, "okta-fraud")
    push = _okta(bot).wait_for_push(timeout=10)
    assert push.username == "alice@example.com"
    _okta(bot).answer_push(push.txid, "fraud")

    escalated = bot.wait_status(alert_id, "escalated")
    assert (escalated["escalation_reason"], escalated["duo_result"]) == ("duo_fraud",) * 2
    post = bot.wait_security_post()
    assert post.params["text"].startswith(f"[CRITICAL] Escalated alert #{alert_id}:")
    blocks = json.dumps(post.params["blocks"])
    assert "reported the Okta Verify push as *fraud*" in blocks
    assert "Okta Verify push sent" in blocks and "Okta Verify push reported as *fraud*" in blocks
    assert "Duo" not in blocks
    update = wait_until(lambda: ok_calls(bot.fs, "chat.update", "DUALICE"), what="DM update")
    assert "You reported the Okta Verify push as fraudulent" in update[0].params["text"]
    answer = bot.audit(alert_id, "alert.duo_fraud")[0]
    assert (answer.actor, answer.details["verifier"]) == ("okta", "okta")
    # The System Log told "not me" from a plain rejection.
    assert any(r.path == "/api/v1/logs" for r in _okta(bot).requests)


@pytest.mark.parametrize("status", ["SUSPENDED", "LOCKED_OUT"])
def test_a_user_okta_refuses_is_never_pushed_and_escalates(bot: Bot, status: str) -> None:
    _okta(bot).set_status("alice@example.com", status)
    alert_id = _confirmed(bot, f"okta-{status}")
    escalated = bot.wait_status(alert_id, "escalated")
    assert escalated["escalation_reason"] == "duo_not_enrolled"
    assert _okta(bot).started_pushes() == []
    row = bot.audit(alert_id, "alert.duo_not_enrolled")[0]
    assert row.details["detail"] == f"Okta user is {status}"


def test_a_user_without_okta_verify_escalates_as_not_enrolled(bot: Bot) -> None:
    _okta(bot).enroll("alice@example.com", devices=["sms"])
    alert_id = _confirmed(bot, "okta-sms-only")
    assert bot.wait_status(alert_id, "escalated")["escalation_reason"] == "duo_not_enrolled"
    assert "(duo_not_enrolled)" in bot.wait_security_post().params["text"]
    update = wait_until(lambda: ok_calls(bot.fs, "chat.update", "DUALICE"), what="DM update")
    assert "aren't enrolled in Okta Verify" in update[0].params["text"]


def test_okta_rate_limits_fail_closed_as_an_error_naming_the_limit(bot: Bot) -> None:
    _okta(bot).fail_all(429)
    alert_id = _confirmed(bot, "okta-429")
    escalated = bot.wait_status(alert_id, "escalated", timeout=15)
    assert escalated["escalation_reason"] == "duo_error"
    assert len(_okta(bot).requests) == 3  # MAX_DUO_ERRORS attempts, then fail closed
    assert all(r.status == 429 and r.token_ok for r in _okta(bot).requests)
    error = bot.audit(alert_id, "alert.duo_error")[0]
    assert "Okta rate limit (600/min) reached" in json.dumps(error.details)
    assert _okta(bot).token not in json.dumps(error.details)
    assert "Okta Verify error" in json.dumps(bot.wait_security_post().params["blocks"])


@pytest.mark.parametrize("status", [500, 429])
def test_a_failed_verify_is_never_retried_into_a_second_push(bot: Bot, status: int) -> None:
    _okta(bot).verify_fails = status
    alert_id = _confirmed(bot, f"okta-verify-{status}")
    escalated = bot.wait_status(alert_id, "escalated", timeout=15)
    assert escalated["escalation_reason"] == "duo_error"
    verifies = [r for r in _okta(bot).requests if r.path.endswith("/verify")]
    assert [r.status for r in verifies] == [status]


@pytest.mark.parametrize(("answer", "reason"), [("deny", "duo_denied"), ("timeout", "duo_timeout")])
def test_rejected_and_timed_out_pushes_escalate_as_themselves(
    bot: Bot, answer: str, reason: str
) -> None:
    alert_id = _confirmed(bot, f"okta-{answer}")
    push = _okta(bot).wait_for_push(timeout=10)
    _okta(bot).answer_push(push.txid, answer)
    assert bot.wait_status(alert_id, "escalated")["escalation_reason"] == reason
    assert len(_okta(bot).started_pushes()) == 1


def test_an_approval_resolves_and_metrics_are_labelled_okta(bot: Bot) -> None:
    alert_id = _confirmed(bot, "okta-approve")
    push = _okta(bot).wait_for_push(timeout=10)
    assert "." in push.txid  # a real org's transaction id: "v2mst.…"
    bot.wait_status(alert_id, "awaiting_2fa")
    _okta(bot).answer_push(push.txid, "allow")
    assert bot.wait_status(alert_id, "resolved")["outcome"] == "confirmed"
    assert len(_okta(bot).started_pushes()) == 1  # one "yes", one push on the phone
    polls = [r for r in _okta(bot).requests if "/transactions/" in r.path]
    assert polls and all(r.path.endswith(f"/transactions/{push.txid}") for r in polls)
    text = bot.http.get("/metrics").text
    assert 'securitybot_verify_results_total{provider="okta",result="approved"}' in text
    assert 'securitybot_verify_latency_seconds_count{call="verify",provider="okta"}' in text


def test_a_text_yes_is_told_an_okta_verify_push_is_on_its_way(bot: Bot) -> None:
    alert_id = int(bot.post_alert(dedup_key="okta-text-yes")["id"])
    bot.wait_status(alert_id, "awaiting_ack")
    bot.say("UALICE", "ack")
    _okta(bot).wait_for_push(timeout=10)
    reply = bot.wait_reply("UALICE")[0].params["text"]
    assert "Okta Verify push" in reply and "Duo" not in reply
