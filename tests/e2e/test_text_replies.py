"""Answering by typing in the DM instead of clicking: the words, reasons, help, and ordering."""

from __future__ import annotations

import pytest

from securitybot.slack.messages import CONFIRM_DENIAL_TEXT, HELP_TEXT
from tests.e2e.harness import Bot


def _open_alert(bot: Bot, key: str, **fields: object) -> int:
    alert = bot.post_alert(dedup_key=key, **fields)
    bot.wait_status(alert["id"], "awaiting_ack")
    return int(alert["id"])


def _duo_auths(bot: Bot) -> int:
    return len([r for r in bot.fd.requests if r.path == "/auth/v2/auth"])


@pytest.mark.parametrize("word", ["ack", "acknowledge", "yes", "y"])
def test_a_yes_word_starts_the_duo_push(bot: Bot, word: str) -> None:
    alert_id = _open_alert(bot, f"yes-{word}")
    assert bot.say("UALICE", word).status_code == 200

    push = bot.fd.wait_for_push(timeout=10)
    assert push.username == "alice"
    assert push.pushinfo["Alert id"] == str(alert_id)
    a = bot.wait_status(alert_id, "awaiting_2fa")
    assert a["user_answer"] == "confirmed"
    assert a["user_comment"] is None
    reply = bot.wait_reply("UALICE")[0].params["text"]
    assert reply.startswith(f"That answered alert #{alert_id} ")
    assert "Duo push" in reply
    bot.fd.answer_push(push.txid, "allow")
    assert bot.wait_status(alert_id, "resolved")["outcome"] == "confirmed"
    assert _duo_auths(bot) == 1


@pytest.mark.parametrize(("word", "again"), [("no", "confirm"), ("n", "no"), ("not me", "n")])
def test_a_no_word_asks_for_confirmation_then_escalates_as_not_me(
    bot: Bot, word: str, again: str
) -> None:
    alert_id = _open_alert(bot, f"no-{word}")
    bot.say("UALICE", word)
    ask = bot.wait_reply("UALICE")[0].params["text"]
    assert ask.endswith(CONFIRM_DENIAL_TEXT) and f"#{alert_id}" in ask
    assert bot.alert(alert_id)["status"] == "awaiting_ack"  # a mis-typed "no" pages nobody
    assert bot.security_posts() == []
    assert len(bot.audit(alert_id, "answer.denial_pending")) == 1

    bot.say("UALICE", again)
    a = bot.wait_status(alert_id, "escalated")
    assert a["escalation_reason"] == "not_me"
    assert a["user_answer"] == "denied"
    assert a["user_comment"] is None
    reply = bot.wait_reply("UALICE", count=2)[1].params["text"]
    assert reply.startswith(f"That answered alert #{alert_id} ")
    assert "security team has been notified" in reply
    post = bot.wait_security_post()
    assert "(not_me)" in post.params["text"]
    assert _duo_auths(bot) == 0


def test_a_reason_after_yes_is_stored_as_the_user_comment(bot: Bot) -> None:
    alert_id = _open_alert(bot, "yes-reason")
    bot.say("UALICE", "ack running the quarterly export")
    a = bot.wait_status(alert_id, "awaiting_2fa")
    assert a["user_comment"] == "running the quarterly export"
    assert bot.audit(alert_id, "alert.user_confirmed")[0].details["comment"] == (
        "running the quarterly export"
    )


def test_a_reason_after_not_me_is_stored_and_shown_to_the_team(bot: Bot) -> None:
    alert_id = _open_alert(bot, "no-reason")
    bot.say("UALICE", "not me, I was asleep")
    bot.wait_reply("UALICE")
    bot.say("UALICE", "confirm")
    a = bot.wait_status(alert_id, "escalated")
    assert a["escalation_reason"] == "not_me"
    assert a["user_comment"] == "I was asleep"
    post = bot.wait_security_post()
    assert "I was asleep" in str(post.params["blocks"])


def test_help_lists_the_words_and_changes_nothing(bot: Bot) -> None:
    alert_id = _open_alert(bot, "help")
    bot.say("UALICE", "help")
    reply = bot.wait_reply("UALICE")[0].params["text"]
    assert reply == HELP_TEXT
    for word in ("`ack`", "`acknowledge`", "`yes`", "`y`", "`no`", "`n`", "`not me`",
                 "`confirm`", "`wrong person`"):  # fmt: skip
        assert word in reply
    assert bot.alert(alert_id)["status"] == "awaiting_ack"
    assert _duo_auths(bot) == 0


def test_gibberish_gets_a_short_help_reply_and_changes_nothing(bot: Bot) -> None:
    alert_id = _open_alert(bot, "gibberish")
    bot.say("UALICE", "flibbertigibbet wobble")
    reply = bot.wait_reply("UALICE")[0].params["text"]
    assert reply.startswith("Sorry, I didn't get that.")
    assert "`ack`" in reply and "`no`" in reply
    assert len(reply) < 400
    assert bot.alert(alert_id)["status"] == "awaiting_ack"
    assert bot.alert(alert_id)["user_answer"] is None
    assert _duo_auths(bot) == 0


def test_with_two_open_alerts_a_reply_answers_the_oldest_and_names_it(bot: Bot) -> None:
    first = _open_alert(bot, "two-1")
    # Another kind: a burst of one kind for one user is grouped into a single conversation.
    payroll = {"host": "payrollserver02", "command": "flurb -export"}
    second = _open_alert(
        bot, "two-2", kind="default", title="flurb -export on payrollserver02", details=payroll
    )

    bot.say("UALICE", "no")
    assert f"#{first}" in bot.wait_reply("UALICE")[0].params["text"]
    bot.say("UALICE", "no")
    assert bot.wait_status(first, "escalated")["escalation_reason"] == "not_me"
    reply = bot.wait_reply("UALICE", count=2)[1].params["text"]
    assert f"#{first}" in reply and f"#{second}" not in reply
    assert "accountingserver01" in reply
    assert bot.alert(second)["status"] == "awaiting_ack"

    bot.say("UALICE", "yes")
    bot.wait_status(second, "awaiting_2fa")
    reply = bot.wait_reply("UALICE", count=3)[2].params["text"]
    assert f"#{second}" in reply and f"#{first}" not in reply
    assert "payrollserver02" in reply
    assert bot.fd.wait_for_push(timeout=10).pushinfo["Alert id"] == str(second)


def test_first_dm_greets_by_first_name_and_later_ones_do_not_repeat_it(bot: Bot) -> None:
    _open_alert(bot, "greet-1")
    first = str(bot.dms("UALICE")[0].params["blocks"])
    assert "Hi Alice! I'm Securitybot" in first
    assert "because you know best whether it was you" in first

    _open_alert(bot, "greet-2", kind="default", title="flurb -export on payrollserver02")
    dms = bot.dms("UALICE")
    assert len(dms) == 2
    second = str(dms[1].params["blocks"])
    assert "Hi Alice, " in second
    assert "I'm Securitybot" not in second


def test_a_reply_with_nothing_open_says_so(bot: Bot) -> None:
    bot.say("UBOB", "yes")
    reply = bot.wait_reply("UBOB")[0].params["text"]
    assert reply == "You have no open alerts waiting for an answer. Thanks!"
    assert _duo_auths(bot) == 0


def test_someone_elses_text_reply_never_answers_alices_alert(bot: Bot) -> None:
    alert_id = _open_alert(bot, "other-says")
    bot.say("UMALLORY", "no")
    reply = bot.wait_reply("UMALLORY")[0].params["text"]
    assert "no open alerts" in reply
    a = bot.alert(alert_id)
    assert a["status"] == "awaiting_ack" and a["user_answer"] is None
    assert bot.security_posts() == []


def test_yes_after_a_first_no_is_a_yes_and_the_no_is_dropped(bot: Bot) -> None:
    alert_id = _open_alert(bot, "no-then-yes")
    bot.say("UALICE", "no")
    bot.wait_reply("UALICE")
    bot.say("UALICE", "yes")
    assert bot.wait_status(alert_id, "awaiting_2fa")["user_answer"] == "confirmed"
    assert bot.security_posts() == []


def test_confirm_with_nothing_to_confirm_changes_nothing(bot: Bot) -> None:
    alert_id = _open_alert(bot, "bare-confirm")
    bot.say("UALICE", "confirm")
    assert bot.wait_reply("UALICE")[0].params["text"].startswith("There is nothing to confirm.")
    assert bot.alert(alert_id)["status"] == "awaiting_ack"


@pytest.mark.parametrize("words", ["wrong person", "Wrong person: that is my old laptop", "wrong"])
def test_wrong_person_escalates_at_once_so_the_team_fixes_the_mapping(bot: Bot, words: str) -> None:
    alert_id = _open_alert(bot, f"wrong-{words}")
    bot.say("UALICE", words)
    a = bot.wait_status(alert_id, "escalated")
    assert (a["escalation_reason"], a["user_answer"]) == ("wrong_person", "wrong_person")
    post = bot.wait_security_post()
    assert "(wrong_person)" in post.params["text"]
    assert "someone else" in str(post.params["blocks"])
    assert _duo_auths(bot) == 0


def test_two_quick_noes_are_a_no_and_its_confirmation(bot: Bot) -> None:
    # Slack may hand both messages to us at once; they must not both count as the first "no".
    alert_id = _open_alert(bot, "two-quick-noes")
    bot.say("UALICE", "no")
    bot.say("UALICE", "no")
    assert bot.wait_status(alert_id, "escalated")["escalation_reason"] == "not_me"
    assert len(bot.audit(alert_id, "answer.denial_pending")) == 1
