"""More honest answers: "Wrong person" (the alert names someone else), and a "No" button that
Slack confirms before the click is sent; times in the DM in the reader's own time zone."""

from __future__ import annotations

import re

from securitybot.slack.messages import DENY_ACTION, WRONG_PERSON_ACTION
from tests.e2e.harness import Bot, wait_until

SLACK_DATE = re.compile(
    r"<!date\^(\d+)\^\{date_short_pretty\} at \{time\}\|(\d{4}-\d\d-\d\d \d\d:\d\d UTC)>"
)


def _buttons(blocks: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {
        e["action_id"]: e  # type: ignore[index,misc]
        for b in blocks
        if b.get("type") == "actions"
        for e in b["elements"]  # type: ignore[attr-defined]
    }


def test_the_dm_offers_wrong_person_and_slack_confirms_a_no_before_sending_it(bot: Bot) -> None:
    alert = bot.post_alert(dedup_key="buttons")
    bot.wait_status(alert["id"], "awaiting_ack")
    [dm] = bot.dms("UALICE")
    buttons = _buttons(dm.params["blocks"])
    assert buttons[WRONG_PERSON_ACTION]["text"]["text"] == "Wrong person"  # type: ignore[index]
    confirm = buttons[DENY_ACTION]["confirm"]
    assert confirm["confirm"]["text"] and confirm["deny"]["text"] == "Cancel"  # type: ignore[index]
    # The alert's time, formatted by Slack for the reader, with the UTC fallback text.
    m = SLACK_DATE.search(str(dm.params["blocks"]))
    assert m is not None
    assert int(m.group(1)) > 1_700_000_000


def test_wrong_person_escalates_with_its_own_reason_and_tells_the_user(bot: Bot) -> None:
    alert = bot.post_alert(dedup_key="wrong-click")
    bot.wait_status(alert["id"], "awaiting_ack")
    assert bot.click("UALICE", WRONG_PERSON_ACTION, alert["id"]).status_code == 200
    a = bot.wait_status(alert["id"], "escalated")
    assert (a["escalation_reason"], a["user_answer"]) == ("wrong_person", "wrong_person")
    post = bot.wait_security_post()
    assert "(wrong_person)" in post.params["text"]
    updates = wait_until(lambda: bot.fs.calls_to("chat.update"), what="the DM updated")
    assert "someone else" in str(updates[0].params["blocks"])
    assert bot.audit(alert["id"], "alert.wrong_person")[0].actor == "UALICE"


def test_only_the_person_asked_can_say_wrong_person(bot: Bot) -> None:
    alert = bot.post_alert(dedup_key="wrong-mallory")
    bot.wait_status(alert["id"], "awaiting_ack")
    bot.click("UMALLORY", WRONG_PERSON_ACTION, alert["id"])
    wait_until(lambda: bot.audit(alert["id"], "answer.refused"), what="the refusal audited")
    assert bot.alert(alert["id"])["status"] == "awaiting_ack"
