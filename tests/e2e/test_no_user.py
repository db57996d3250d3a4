"""An alert that names nobody Slack knows goes straight to the security team (``no_user``):
no Slack lookup, no DM, no grouping with other such alerts, no exemption or snooze."""

from __future__ import annotations

from tests.e2e.harness import Bot, ok_calls, wait_until


def test_a_login_name_escalates_as_no_user_without_asking_slack(bot: Bot) -> None:
    alert = bot.post_alert(dedup_key="root-shell", user="root")
    assert alert["note"] == "names no Slack user (got 'root'); it goes to the security team"

    escalated = bot.wait_status(alert["id"], "escalated")

    assert escalated["escalation_reason"] == "no_user" and escalated["user_id"] is None
    post = bot.wait_security_post()
    assert "(no_user)" in post.params["text"]
    assert "`root`" in str(post.params["blocks"])
    assert not bot.fs.calls_to("users.lookupByEmail") and not bot.fs.calls_to("users.info")
    assert [c.params["channel"] for c in ok_calls(bot.fs, "chat.postMessage")] == ["CSECURITY"]
    assert len(bot.audit(alert["id"], "alert.no_user")) == 1


def test_alerts_naming_nobody_are_never_grouped(bot: Bot) -> None:
    first = bot.post_alert(dedup_key="nobody-1", user="")
    second = bot.post_alert(dedup_key="nobody-2", user="")
    third = bot.post_alert(dedup_key="nobody-3", user="root")

    for a in (first, second, third):
        assert bot.wait_status(a["id"], "escalated")["escalation_reason"] == "no_user"
        assert bot.row(a["id"]).parent_id is None
    posts = wait_until(lambda: p if len(p := bot.security_posts()) == 3 else [], what="3 posts")
    assert sum("no user named" in str(p.params["blocks"]) for p in posts) == 2
