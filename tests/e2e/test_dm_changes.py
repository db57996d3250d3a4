"""Deleting or editing messages in the alert's DM: deletions escalate at once, edits never
change the answer. Event shapes follow Slack's reference for the message_deleted and
message_changed subtypes (see securitybot/demo/slack_event_bodies.py)."""

from __future__ import annotations

from securitybot.demo.slack_event_bodies import (
    message_changed_body,
    message_deleted_body,
    message_event_body,
)
from securitybot.flows.timeline import timeline_text
from securitybot.slack.messages import CONFIRM_ACTION, DENY_ACTION
from tests.e2e.harness import Bot, wait_until

DM = "DUALICE"


def _open_alert(bot: Bot, key: str, **fields: object) -> int:
    alert = bot.post_alert(dedup_key=key, **fields)
    bot.wait_status(alert["id"], "awaiting_ack")
    return int(alert["id"])


def _question_ts(bot: Bot, alert_id: int) -> str:
    ts = bot.row(alert_id).dm_ts
    assert ts is not None
    return ts


def _bot_message(bot: Bot, ts: str) -> dict[str, object]:
    """The deleted message as Slack puts it in previous_message."""
    return next(m for m in bot.fs.messages(DM) if m["ts"] == ts)


def _timeline(bot: Bot, alert_id: int) -> list[str]:
    return [t for t in (timeline_text(r) for r in bot.audit(alert_id)) if t]


def _reply(bot: Bot, text: str, ts: str) -> None:
    body = message_event_body(user="UALICE", text=text, channel=DM, ts=ts)
    assert bot.slack_post(body).status_code == 200


def test_deleting_the_question_escalates_at_once(bot: Bot) -> None:
    alert_id = _open_alert(bot, "delete-question")
    ts = _question_ts(bot, alert_id)

    deleted = message_deleted_body(DM, ts, previous_message=_bot_message(bot, ts))
    assert bot.slack_post(deleted).status_code == 200

    a = bot.wait_status(alert_id, "escalated", timeout=5)
    assert a["escalation_reason"] == "dm_deleted"
    [row] = bot.audit(alert_id, "alert.dm_deleted")
    assert row.details["deleted"] == "question" and row.details["deleted_ts"] == ts
    assert any("The bot's question" in t and "was deleted" in t for t in _timeline(bot, alert_id))
    post = bot.wait_security_post()
    assert "(dm_deleted)" in post.params["text"]
    assert "The bot's question" in str(post.params["blocks"])


def test_deleting_the_question_of_a_group_escalates_the_whole_group(bot: Bot) -> None:
    parent = _open_alert(bot, "group-1")
    child = bot.post_alert(dedup_key="group-2")["id"]  # same user and kind: joins the DM
    wait_until(lambda: bot.row(child).parent_id == parent, what="the alert to join the group")
    bot.wait_status(child, "awaiting_ack")

    bot.slack_post(message_deleted_body(DM, _question_ts(bot, parent)))

    assert bot.wait_status(parent, "escalated")["escalation_reason"] == "dm_deleted"
    assert bot.wait_status(child, "escalated")["escalation_reason"] == "dm_deleted"


def test_deleting_the_yes_reply_escalates_while_duo_is_pending(bot: Bot) -> None:
    alert_id = _open_alert(bot, "delete-reply")
    _reply(bot, "yes", "1700000000.000100")
    bot.wait_status(alert_id, "awaiting_2fa")
    bot.fd.wait_for_push(timeout=10)

    reply = {"type": "message", "user": "UALICE", "text": "yes", "ts": "1700000000.000100"}
    bot.slack_post(message_deleted_body(DM, "1700000000.000100", previous_message=reply))

    a = bot.wait_status(alert_id, "escalated")
    assert a["escalation_reason"] == "dm_deleted"
    assert a["user_answer"] == "confirmed"
    [row] = bot.audit(alert_id, "alert.dm_deleted")
    assert row.details["deleted"] == "reply"
    assert any("The user's reply (posted " in t for t in _timeline(bot, alert_id))


def test_deleting_a_message_that_answered_nothing_changes_nothing(bot: Bot) -> None:
    alert_id = _open_alert(bot, "delete-chatter")
    _reply(bot, "help", "1700000000.000200")
    bot.wait_reply("UALICE")

    bot.slack_post(message_deleted_body(DM, "1700000000.000200"))
    # A later answer is handled, so the deletion before it was handled too.
    _reply(bot, "yes", "1700000000.000300")
    bot.wait_status(alert_id, "awaiting_2fa")
    assert bot.audit(alert_id, "alert.dm_deleted") == []


def test_a_deletion_after_the_alert_was_decided_is_recorded_but_changes_nothing(
    bot: Bot,
) -> None:
    alert_id = _open_alert(bot, "delete-late")
    _reply(bot, "no", "1700000000.000399")  # asks "are you sure?"
    wait_until(lambda: bot.replies("UALICE"), what="are you sure?")
    _reply(bot, "no", "1700000000.000400")  # the answering reply
    bot.wait_status(alert_id, "escalated")

    bot.slack_post(message_deleted_body(DM, "1700000000.000400"))

    [row] = wait_until(lambda: bot.audit(alert_id, "event_ignored.dm_deleted"), what="audit")
    assert row.details["deleted"] == "reply"
    a = bot.alert(alert_id)
    assert a["status"] == "escalated" and a["escalation_reason"] == "not_me"
    assert any("after the alert was decided" in t for t in _timeline(bot, alert_id))


def test_editing_the_reply_never_changes_the_answer(bot: Bot) -> None:
    alert_id = _open_alert(bot, "edit-reply")
    _reply(bot, "no", "1700000000.000499")  # asks "are you sure?"
    wait_until(lambda: bot.replies("UALICE"), what="are you sure?")
    _reply(bot, "no", "1700000000.000500")  # the answering reply
    bot.wait_status(alert_id, "escalated")

    edit = message_changed_body("UALICE", DM, "1700000000.000500", text="yes",
                                previous_text="no")  # fmt: skip
    assert bot.slack_post(edit).status_code == 200

    [row] = wait_until(lambda: bot.audit(alert_id, "answer.reply_edited"), what="the edit")
    assert row.details["text"] == "yes" and row.details["previous_text"] == "no"
    a = bot.alert(alert_id)
    assert a["status"] == "escalated" and a["user_answer"] == "denied"
    assert any("User edited their reply; the answer stands" in t for t in _timeline(bot, alert_id))


def test_an_edit_while_duo_is_pending_leaves_the_push_alone(bot: Bot) -> None:
    alert_id = _open_alert(bot, "edit-pending")
    _reply(bot, "yes", "1700000000.000600")
    bot.wait_status(alert_id, "awaiting_2fa")

    bot.slack_post(message_changed_body("UALICE", DM, "1700000000.000600", text="no",
                                        previous_text="yes"))  # fmt: skip

    wait_until(lambda: bot.audit(alert_id, "answer.reply_edited"), what="the edit")
    a = bot.alert(alert_id)
    assert a["status"] == "awaiting_2fa" and a["user_answer"] == "confirmed"


def test_the_bots_own_dm_updates_are_not_edits_or_answers(bot: Bot) -> None:
    alert_id = _open_alert(bot, "own-update")
    bot.click("UALICE", DENY_ACTION, alert_id)
    bot.wait_status(alert_id, "escalated")
    ts = _question_ts(bot, alert_id)
    # Slack tells us about our own chat.update of the question as a message_changed.
    own = message_changed_body(
        "UBOT", DM, ts, text="answered", previous_text="question", bot_id="BBOT"
    )
    assert bot.slack_post(own).status_code == 200
    # A click on another alert afterwards is processed, so ours was too.
    other = _open_alert(bot, "own-update-2", kind="default", title="flurb on payrollserver02")
    bot.click("UALICE", CONFIRM_ACTION, other)
    bot.wait_status(other, "awaiting_2fa")
    assert bot.audit(alert_id, "answer.reply_edited") == []
