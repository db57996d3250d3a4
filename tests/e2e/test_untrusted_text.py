"""Alerts carrying Slack markup reach Slack as text, and oversized alerts still reach the user."""

from __future__ import annotations

from securitybot.demo import Call
from securitybot.slack.limits import problems
from tests.e2e.harness import SECURITY_CHANNEL, Bot, ok_calls, wait_until
from tests.slack.helpers import assert_inert, mrkdwn_of

PHISH = "<https://evil.example/sso|Re-verify your account>"


def test_an_alert_full_of_markup_pings_nobody_and_links_nowhere(bot: Bot) -> None:
    alert = bot.post_alert(
        dedup_key="markup",
        title="<!channel> flurb on <!here>",
        description=f"{PHISH} &lt;!channel&gt; <@UBOB> <!subteam^S1>",
        details={"host": "web` <!channel> `01", "command": f"curl {PHISH}"},
    )
    bot.wait_status(alert["id"], "awaiting_ack")
    dm = bot.dms("UALICE")[0]
    assert_inert(mrkdwn_of(dm.params["text"], dm.params["blocks"]))
    assert "`webˋ &lt;!channel&gt; ˋ01`" in str(dm.params["blocks"])  # its code span holds

    bot.say("UALICE", f"no I never did that {PHISH} <!channel>")
    ask = bot.wait_reply("UALICE")[0]  # "are you sure?", naming the alert's (hostile) title
    assert_inert(mrkdwn_of(ask.params["text"]))
    bot.say("UALICE", "confirm")
    bot.wait_status(alert["id"], "escalated")
    reply = bot.wait_reply("UALICE", count=2)[1]
    assert_inert(mrkdwn_of(reply.params["text"]))

    def timeline_shown() -> list[Call]:
        sent = ok_calls(bot.fs, "chat.postMessage", SECURITY_CHANNEL)
        sent += ok_calls(bot.fs, "chat.update", SECURITY_CHANNEL)
        return [c for c in sent if "never did that" in str(c.params.get("blocks"))]

    for call in wait_until(timeline_shown, what="the user's comment in the escalation"):
        texts = mrkdwn_of(call.params["text"], call.params["blocks"])
        assert_inert(texts, allowed=("<@UALICE>",))


def test_a_5000_character_host_still_asks_the_user(bot: Bot) -> None:
    host = "h" * 5000
    alert = bot.post_alert(
        dedup_key="long-host", description="d" * 7999,
        details={"host": host, "command": "c" * 5000, "notes": "&" * 4000},
    )  # fmt: skip
    bot.wait_status(alert["id"], "awaiting_ack")
    dm = bot.dms("UALICE")[0]
    assert problems(dm.params["blocks"]) == []
    assert f"(truncated; full alert: #{alert['id']})" in str(dm.params["blocks"])

    bot.say("UALICE", "no " + "because " * 1000)  # a long reply comment for the timeline
    bot.wait_reply("UALICE")
    bot.say("UALICE", "confirm")
    bot.wait_status(alert["id"], "escalated")
    post = bot.wait_security_post()
    assert problems(post.params["blocks"]) == []
