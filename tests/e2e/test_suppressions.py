"""Suppression rules from Slack: a responder's maintenance window closes matching new alerts as
``suppressed`` (stored, named, counted), never the rule author's own, never ``always_escalate``."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from securitybot.demo import FakeSlack, slash_command_body
from securitybot.flows import suppression_summary
from securitybot.store.models import AuditLog, Outbox, utcnow
from securitybot.store.suppression_models import SuppressionRule
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import Bot, wait_until

LEAD = "USECLEAD"
TEAM = {"escalation": {"responders": [LEAD], "max_suppression": "2d"}}


@pytest.fixture
def team_fs(fs: FakeSlack) -> FakeSlack:
    fs.add_user(LEAD, "lead@example.com", real_name="Sam Lead", first_name="Sam")
    return fs


def command(bot: Bot, user: str, text: str) -> str:
    resp = bot.slack_post(slash_command_body(user=user, text=text))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["response_type"] == "ephemeral"
    return str(body["text"])


def rules(bot: Bot) -> list[SuppressionRule]:
    with bot.db.read() as session:
        return list(session.scalars(select(SuppressionRule).order_by(SuppressionRule.id)))


def audit(bot: Bot, action: str) -> list[AuditLog]:
    with bot.db.read() as session:
        q = select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
        return list(session.scalars(q))


def suppressed_count(bot: Bot, kind: str) -> float:
    text = httpx.get(f"{bot.base}/metrics").text
    for line in text.splitlines():
        if line.startswith(f'securitybot_alerts_suppressed_by_rule_total{{kind="{kind}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_maintenance_window_closes_matching_alerts_as_suppressed_and_names_the_rule(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    before = suppressed_count(bot, "sensitive_command")
    reply = command(bot, LEAD, "suppress sensitive_command host=build-* 4h CI image rebuild")
    [rule] = rules(bot)
    assert f"R{rule.id} sensitive_command host=build-*" in reply
    assert "<!date^" in reply  # the expiry, in the reader's time zone
    assert (rule.kind, rule.matchers, rule.created_by) == (
        "sensitive_command", {"host": "build-*"}, LEAD,
    )  # fmt: skip
    assert timedelta(hours=3, minutes=59) < rule.expires_at - rule.created_at <= timedelta(hours=4)
    [created] = audit(bot, "suppression.created")
    assert (created.actor, created.details["via"]) == (LEAD, "slack_command")

    hit = bot.post_alert(details={"host": "build-07", "command": "docker build"})
    miss = bot.post_alert(details={"host": "accountingserver01", "command": "flurb -export"})
    closed = bot.wait_status(hit["id"], "closed")
    assert closed["outcome"] == "suppressed"
    assert bot.row(hit["id"]).suppression_id == closed["suppression_id"] == rule.id
    [matched] = bot.audit(hit["id"], "alert.suppression_matched")
    assert matched.details["suppression_id"] == rule.id
    assert matched.details["rule"] == f"R{rule.id} sensitive_command host=build-*"
    assert bot.wait_status(miss["id"], "awaiting_ack")
    assert len(bot.dms("UALICE")) == 1  # only the alert outside the window was asked about
    assert suppressed_count(bot, "sensitive_command") == before + 1

    assert f"R{rule.id} sensitive_command host=build-*" in command(bot, LEAD, "rules")
    assert command(bot, LEAD, f"revoke R{rule.id}") == f"Revoked suppression rule R{rule.id}."
    [revoked] = audit(bot, "suppression.revoked")
    assert (revoked.actor, revoked.details["suppression_id"]) == (LEAD, rule.id)
    after = bot.post_alert(details={"host": "build-08"})
    assert bot.wait_status(after["id"], "awaiting_ack")  # a revoked rule no longer applies
    assert [r.revoked_by for r in rules(bot)] == [LEAD]  # never deleted
    assert command(bot, LEAD, "rules") == "No active rules."


def test_an_expired_rule_suppresses_nothing(team_fs: FakeSlack, make_bot: MakeBot) -> None:
    bot = make_bot(**TEAM)
    command(bot, LEAD, "suppress sensitive_command 1h deploy")
    with bot.db.write() as session:
        session.execute(update(SuppressionRule).values(expires_at=SuppressionRule.created_at))
    alert = bot.post_alert()
    assert bot.wait_status(alert["id"], "awaiting_ack")
    assert bot.row(alert["id"]).suppression_id is None


def test_a_rule_never_suppresses_alerts_about_its_author(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    command(bot, LEAD, "suppress sensitive_command 1h my own maintenance")
    mine = bot.post_alert(user="lead@example.com")
    theirs = bot.post_alert(user="bob@example.com")
    assert bot.wait_status(theirs["id"], "closed")["outcome"] == "suppressed"
    assert bot.wait_status(mine["id"], "awaiting_ack")  # the author is asked like anyone


def test_always_escalate_kinds_and_bad_rules_are_refused(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    assert "cannot be suppressed" in command(bot, LEAD, "suppress ssh_key_added 1h rotation")
    assert "no alert kind" in command(bot, LEAD, "suppress no_such_kind 1h x")
    assert "at most 2d" in command(bot, LEAD, "suppress sensitive_command 3d too long")
    assert "not a duration" in command(bot, LEAD, "suppress sensitive_command host=a forever x")
    assert "reason is required" in command(bot, LEAD, "suppress sensitive_command 1h")
    assert "Only the security team" in command(
        bot, "UMALLORY", "suppress sensitive_command 1h cover my tracks"
    )
    assert rules(bot) == []
    refused = audit(bot, "command.refused")
    assert [(r.actor, r.details["reason"]) for r in refused] == [
        (LEAD, "kind cannot be suppressed"), (LEAD, "kind cannot be suppressed"),
        ("UMALLORY", "not a responder"),
    ]  # fmt: skip


def test_everyone_sees_their_own_open_alerts_and_can_send_a_test(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    assert command(bot, "UALICE", "status") == "You have no open alerts. 🎉"
    reply = command(bot, "UALICE", "test")
    assert "Test alert #" in reply
    test_id = int(reply.split("#", 1)[1].split(" ", 1)[0])
    assert bot.wait_status(test_id, "awaiting_ack")
    [dm] = wait_until(lambda: bot.dms("UALICE"), what="the test DM")
    assert "test alert" in str(dm.params["blocks"]).lower()
    status = command(bot, "UALICE", "status")
    assert f"#{test_id} Securitybot test alert" in status and "waiting for your answer" in status
    assert "already asked" in command(bot, "UALICE", "test")  # one a minute
    assert command(bot, "UBOB", "status") == "You have no open alerts. 🎉"  # only your own


def test_the_daily_summary_lists_what_each_rule_suppressed_in_the_security_channel(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    command(bot, LEAD, "suppress sensitive_command host=build-* 4h CI image rebuild")
    ids = [bot.post_alert(dedup_key=f"s{i}", details={"host": f"build-0{i}"})["id"] for i in (1, 2)]
    for alert_id in ids:
        bot.wait_status(alert_id, "closed")
    # What the scheduler does at escalation.suppression_summary_at; twice, as two replicas would.
    at = utcnow()
    suppression_summary.schedule(bot.db, at)
    suppression_summary.schedule(bot.db, at)
    post = bot.wait_security_post()
    text = post.params["blocks"][0]["text"]["text"]
    assert text.startswith("*🔕 2 alerts suppressed* between <!date^")
    assert "`R1 sensitive_command host=build-*` ×2 by <@USECLEAD>: CI image rebuild" in text
    assert all(f"#{i} flurb -export on accountingserver01" in text for i in ids)
    time.sleep(1)  # a second run (the other replica's row) would have posted by now
    assert len(bot.security_posts()) == 1


def test_no_summary_is_posted_when_nothing_was_suppressed(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    suppression_summary.schedule(bot.db, utcnow())

    def job_status() -> str | None:
        with bot.db.read() as session:
            q = select(Outbox.status).where(Outbox.effect == suppression_summary.EFFECT)
            return session.scalar(q)

    wait_until(lambda: job_status() == "done", what="the summary job done")
    assert bot.security_posts() == []
