"""Everything that is not the happy path: timeouts, unknown people, Duo trouble, forged or
foreign answers, Slack failures and duplicate alerts. Each one must fail closed."""

from __future__ import annotations

import time

import pytest

from securitybot.demo import FakeDuo, block_action_body
from securitybot.slack.messages import CONFIRM_ACTION, DENY_ACTION
from securitybot.store.models import AuditLog
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import Bot, ok_calls, wait_until


def _open_alert(bot: Bot, key: str, **fields: object) -> int:
    alert = bot.post_alert(dedup_key=key, **fields)
    bot.wait_status(alert["id"], "awaiting_ack")
    return int(alert["id"])


def _duo(fd: FakeDuo, path: str) -> int:
    return len([r for r in fd.requests if r.path == f"/auth/v2/{path}"])


def _dm_update(bot: Bot, user: str = "UALICE") -> str:
    calls = wait_until(lambda: ok_calls(bot.fs, "chat.update", f"D{user}"), what="DM update")
    assert len(calls) == 1
    assert "actions" not in str(calls[0].params["blocks"])  # buttons gone
    text: str = calls[0].params["text"]
    return text


# -- deadlines ------------------------------------------------------------------------------


def test_silence_escalates_as_no_response_at_the_deadline(make_bot: MakeBot) -> None:
    bot = make_bot(policy={"ack_timeout": 1})
    # The "default" kind has no ack_timeout of its own, so policy.ack_timeout applies.
    alert = bot.post_alert(dedup_key="silence", kind="default")
    # Not waited for in awaiting_ack: a loaded machine can poll past that one-second state.
    escalated = bot.wait_status(alert["id"], "escalated", timeout=20)
    sent_at = bot.dms("UALICE")[0].at
    assert escalated["escalation_reason"] == "no_response"
    assert escalated["user_answer"] is None
    assert len(bot.audit(alert["id"], "alert.deadline_passed")) == 1
    post = bot.wait_security_post()
    assert "(no_response)" in post.params["text"]
    # Not before the deadline (the sweep's own pace is bench/latency.py's business).
    assert post.at - sent_at >= 1.0
    assert "No answer in time" in _dm_update(bot)
    assert _duo(bot.fd, "auth") == 0
    time.sleep(0.5)  # later sweeps must not escalate it again
    assert len(bot.security_posts()) == 1


def test_an_ignored_push_escalates_as_duo_timeout(make_bot: MakeBot) -> None:
    bot = make_bot(policy={"duo_timeout": 1})
    alert_id = _open_alert(bot, "push-ignored")
    bot.click("UALICE", CONFIRM_ACTION, alert_id)
    push = bot.fd.wait_for_push(timeout=10)
    # Not waited for in awaiting_2fa: a loaded machine can poll past that one-second state.
    escalated = bot.wait_status(alert_id, "escalated", timeout=20)
    assert escalated["escalation_reason"] == "duo_timeout"
    assert escalated["user_answer"] == "confirmed"
    assert "(duo_timeout)" in bot.wait_security_post().params["text"]
    assert "wasn't answered in time" in _dm_update(bot)
    # A late approval is recorded for the team but never resolves the alert.
    bot.fd.answer_push(push.txid, "allow")
    time.sleep(1.5)
    late = bot.alert(alert_id)
    assert late["status"] == "escalated" and late["outcome"] is None
    assert len(bot.security_posts()) == 1


# -- people Slack or Duo cannot vouch for --------------------------------------------------


# A deactivated person as Slack really answers for them: users.lookupByEmail says
# users_not_found (by email), users.info answers the user with deleted: true (by Slack id).
@pytest.mark.parametrize(
    "email",
    ["nobody@example.com", "gone@example.com", "UGONE"],
    ids=["unknown", "deactivated-by-email", "deactivated-by-id"],
)
def test_a_user_slack_cannot_dm_escalates_as_unknown_user(bot: Bot, email: str) -> None:
    alert = bot.post_alert(dedup_key=f"unknown-{email}", user=email)
    escalated = bot.wait_status(alert["id"], "escalated")
    assert escalated["escalation_reason"] == "unknown_user"
    assert escalated["user_id"] is None
    post = bot.wait_security_post()
    assert "(unknown_user)" in post.params["text"]
    assert f"`{email}`" in str(post.params["blocks"])
    assert not ok_calls(bot.fs, "chat.postMessage", "DUGONE")
    assert [c.params["channel"] for c in ok_calls(bot.fs, "chat.postMessage")] == ["CSECURITY"]
    assert not bot.fs.calls_to("conversations.open")


def _not_enrolled(bot: Bot, user_id: str, key: str, user: str = "alice@example.com") -> None:
    alert_id = _open_alert(bot, key, user=user)
    bot.click(user_id, CONFIRM_ACTION, alert_id)
    escalated = bot.wait_status(alert_id, "escalated")
    assert escalated["escalation_reason"] == "duo_not_enrolled"
    assert escalated["outcome"] is None
    assert "(duo_not_enrolled)" in bot.wait_security_post().params["text"]
    assert "aren't enrolled in Duo" in _dm_update(bot, user_id)
    assert _duo(bot.fd, "preauth") == 1
    assert _duo(bot.fd, "auth") == 0  # no push was even attempted
    assert bot.fd.pending_pushes() == []


def test_a_user_duo_does_not_know_escalates_as_not_enrolled(bot: Bot) -> None:
    _not_enrolled(bot, "UMALLORY", "mallory", user="mallory@example.com")


def test_a_user_duo_asks_to_enroll_escalates_as_not_enrolled(bot: Bot) -> None:
    bot.fd.set_preauth("alice", "enroll")
    _not_enrolled(bot, "UALICE", "enroll")


def test_a_user_without_a_push_device_escalates_as_not_enrolled(bot: Bot) -> None:
    bot.fd.enroll("alice", devices=["sms", "phone"])
    _not_enrolled(bot, "UALICE", "no-push-device")


def test_a_duo_bypass_user_is_never_believed(bot: Bot) -> None:
    bot.fd.set_preauth("alice", "allow")
    _not_enrolled(bot, "UALICE", "bypass")


def test_duo_down_escalates_as_duo_error_after_a_few_quick_retries(bot: Bot) -> None:
    bot.fd.fail_all(500)
    alert_id = _open_alert(bot, "duo-down")
    clicked = time.monotonic()
    bot.click("UALICE", CONFIRM_ACTION, alert_id)
    escalated = bot.wait_status(alert_id, "escalated", timeout=15)
    took = time.monotonic() - clicked
    assert escalated["escalation_reason"] == "duo_error"
    assert took < 15
    assert _duo(bot.fd, "preauth") == 3  # MAX_DUO_ERRORS attempts, then fail closed
    assert all(r.status == 500 for r in bot.fd.requests)
    assert "(duo_error)" in bot.wait_security_post().params["text"]
    assert "couldn't verify you with Duo" in _dm_update(bot)
    errors = bot.audit(alert_id, "alert.duo_error")
    assert len(errors) == 1 and "500" in str(errors[0].details)


# -- answers that must not count ------------------------------------------------------------


@pytest.mark.parametrize("action", [CONFIRM_ACTION, DENY_ACTION])
def test_another_users_click_is_refused_and_logged(bot: Bot, action: str) -> None:
    alert_id = _open_alert(bot, f"foreign-{action}")
    resp = bot.click("UMALLORY", action, alert_id)
    assert resp.status_code == 200

    note = wait_until(lambda: bot.fs.calls_to("chat.postEphemeral"), what="ephemeral")[0]
    assert note.params["user"] == "UMALLORY"
    assert note.params["text"] == (
        f"Only <@UALICE> can answer alert #{alert_id}. This attempt was logged."
    )
    refused = wait_until(lambda: bot.audit(alert_id, "answer.refused"), what="audit row")
    assert len(refused) == 1
    row: AuditLog = refused[0]
    assert (row.actor, row.subject_user) == ("UMALLORY", "UALICE")
    assert row.from_status == row.to_status == "awaiting_ack"
    assert row.details["via"] == "button"
    time.sleep(0.3)
    a = bot.alert(alert_id)
    assert (a["status"], a["user_answer"], a["escalation_reason"]) == ("awaiting_ack", None, None)
    assert bot.fd.requests == [] and bot.security_posts() == []
    assert not bot.fs.calls_to("chat.update")


def _forged(bot: Bot, alert_id: int, **kw: object) -> int:
    body = block_action_body(user="UALICE", action_id=DENY_ACTION, value=str(alert_id),
                             channel="DUALICE", message_ts="1.0")  # fmt: skip
    return bot.slack_post(body, **kw).status_code  # type: ignore[arg-type]


def _unchanged(bot: Bot, alert_id: int) -> None:
    time.sleep(0.3)
    a = bot.alert(alert_id)
    assert (a["status"], a["user_answer"]) == ("awaiting_ack", None)
    assert bot.security_posts() == []
    assert not bot.audit(alert_id, "alert.user_denied")


def test_a_bad_slack_signature_is_rejected(bot: Bot) -> None:
    alert_id = _open_alert(bot, "bad-sig")
    assert _forged(bot, alert_id, secret="not-the-signing-secret") == 401
    _unchanged(bot, alert_id)


def test_a_stale_slack_timestamp_is_rejected_even_if_signed(bot: Bot) -> None:
    alert_id = _open_alert(bot, "stale")
    assert _forged(bot, alert_id, timestamp=int(time.time()) - 6 * 60) == 401
    _unchanged(bot, alert_id)


# -- Slack trouble and duplicates -----------------------------------------------------------


def test_a_rate_limited_dm_is_sent_once_after_retry_after(bot: Bot) -> None:
    bot.fs.fail_next("chat.postMessage", status=429, retry_after=1)
    alert_id = _open_alert(bot, "ratelimited")
    # The first post goes to Alice's user id (Slack opens the DM); a retry after a post that
    # may have landed needs the DM's id (D…) to look in its history first.
    attempts = [c for c in bot.fs.calls_to("chat.postMessage")
                if c.params["channel"] in ("UALICE", "DUALICE")]  # fmt: skip
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 0.95
    assert len(bot.dms("UALICE")) == 1
    assert bot.row(alert_id).dm_ts == attempts[1].response["ts"]
    time.sleep(0.5)
    assert len(bot.dms("UALICE")) == 1


def test_a_slack_500_is_retried_and_the_dm_sent_once(bot: Bot) -> None:
    bot.fs.fail_next("chat.postMessage", status=500)
    alert_id = _open_alert(bot, "slack-500")
    # The first post goes to Alice's user id (Slack opens the DM); a retry after a post that
    # may have landed needs the DM's id (D…) to look in its history first.
    attempts = [c for c in bot.fs.calls_to("chat.postMessage")
                if c.params["channel"] in ("UALICE", "DUALICE")]  # fmt: skip
    assert [c.status for c in attempts] == [500, 200]
    assert len(bot.dms("UALICE")) == 1
    assert bot.row(alert_id).dm_ts == attempts[1].response["ts"]
    time.sleep(0.5)
    assert len(bot.dms("UALICE")) == 1


def test_the_same_alert_posted_twice_sends_one_dm(bot: Bot) -> None:
    first = bot.post_alert(dedup_key="dup-1")
    second = bot.post_alert(dedup_key="dup-1")
    assert first["created"] is True and second["created"] is False
    assert second["id"] == first["id"]
    bot.wait_status(first["id"], "awaiting_ack")
    third = bot.post_alert(dedup_key="dup-1")
    assert third["created"] is False and third["id"] == first["id"]
    time.sleep(0.5)
    assert len(bot.dms("UALICE")) == 1
    assert len(bot.audit(first["id"], "alert.ingested")) == 1
