"""``/securitybot`` end to end: signed slash commands through Bolt, answered privately, audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from securitybot.demo import FakeSlack, slash_command_body
from securitybot.store.models import AuditLog, Exemption, Snooze, utcnow
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import Bot

LEAD = "USECLEAD"
TEAM = {"escalation": {"responders": [LEAD, "S0SECTEAM"], "max_exemption": "14d"}}


@pytest.fixture
def team_fs(fs: FakeSlack) -> FakeSlack:
    fs.add_user(LEAD, "lead@example.com", real_name="Sam Lead", first_name="Sam")
    fs.add_user("UGROUPIE", "groupie@example.com", first_name="Gru")
    fs.add_usergroup("S0SECTEAM", ["UGROUPIE"])
    return fs


def command(bot: Bot, user: str, text: str) -> str:
    resp = bot.slack_post(slash_command_body(user=user, text=text))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["response_type"] == "ephemeral"  # only the person who typed it sees the answer
    return str(body["text"])


def audit(bot: Bot, action: str) -> list[AuditLog]:
    with bot.db.read() as session:
        q = select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
        return list(session.scalars(q))


def exemptions(bot: Bot) -> list[Exemption]:
    with bot.db.read() as session:
        return list(session.scalars(select(Exemption).order_by(Exemption.id)))


def test_a_responder_exempts_someone_and_their_alerts_go_straight_to_the_team(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    reply = command(bot, LEAD, "exempt <@UBOB|bob> 7d parental leave")
    assert "Exempted <@UBOB>" in reply
    [e] = exemptions(bot)
    assert (e.user, e.created_by, e.reason) == ("UBOB", LEAD, "parental leave")
    assert e.expires_at is not None
    assert timedelta(days=6, hours=23) < e.expires_at - utcnow() <= timedelta(days=7)
    [created] = audit(bot, "exemption.created")
    assert created.actor == LEAD and created.subject_user == "UBOB"
    assert created.details["via"] == "slack_command"

    alert = bot.post_alert(user="bob@example.com")
    assert bot.wait_status(alert["id"], "escalated")["escalation_reason"] == "user_exempt"
    assert bot.dms("UBOB") == []

    listed = command(bot, "UGROUPIE", "exemptions")  # a responder through the user group
    assert f"E{e.id} <@UBOB>" in listed and "parental leave" in listed
    assert command(bot, "UGROUPIE", f"revoke E{e.id}") == f"Revoked exemption E{e.id}."
    assert exemptions(bot) == []
    [deleted] = audit(bot, "exemption.deleted")
    assert (deleted.actor, deleted.details["via"]) == ("UGROUPIE", "slack_command")
    assert "no active exemption" in command(bot, LEAD, f"revoke E{e.id}")


def test_someone_outside_the_team_is_refused_and_it_is_audited(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    for text in ("exempt <@UMALLORY|mallory> 1d trust me", "exemptions", "revoke S1"):
        assert "Only the security team" in command(bot, "UMALLORY", text)
    assert exemptions(bot) == []
    refused = audit(bot, "command.refused")
    assert [(r.actor, r.details["reason"], r.details["command"]) for r in refused] == [
        ("UMALLORY", "not a responder", "exempt"),
        ("UMALLORY", "not a responder", "exemptions"),
        ("UMALLORY", "not a responder", "revoke"),
    ]
    assert refused[0].subject_user == "UMALLORY"
    assert "exempt @user" in command(bot, "UMALLORY", "help")  # help is for everyone


def test_nobody_exempts_themselves(team_fs: FakeSlack, make_bot: MakeBot) -> None:
    bot = make_bot(**TEAM)
    assert "Nobody can exempt themselves" in command(bot, LEAD, "exempt <@USECLEAD|sam> 1d x")
    assert exemptions(bot) == []
    [refused] = audit(bot, "command.refused")
    assert (refused.actor, refused.details["reason"], refused.subject_user) == (LEAD, "self", LEAD)


def test_a_responder_lists_and_revokes_snoozes(team_fs: FakeSlack, make_bot: MakeBot) -> None:
    bot = make_bot(**TEAM)
    with bot.db.write() as session:
        snooze = Snooze(user_id="UALICE", kind="sensitive_command", scope={"host": "build01"},
                        scope_key="k", created_at=utcnow(),
                        expires_at=utcnow() + timedelta(hours=1))  # fmt: skip
        session.add(snooze)
        session.flush()
        snooze_id = snooze.id
    listed = command(bot, LEAD, "snoozes")
    assert f"S{snooze_id} <@UALICE> `sensitive_command` host=build01" in listed
    assert command(bot, LEAD, f"revoke S{snooze_id}") == f"Revoked snooze S{snooze_id}."
    with bot.db.read() as session:
        assert session.get(Snooze, snooze_id).revoked_by == LEAD  # type: ignore[union-attr]
    [revoked] = audit(bot, "snooze.revoked")
    assert (revoked.actor, revoked.details["via"]) == (LEAD, "slack_command")
    assert command(bot, LEAD, "snoozes") == "No active snoozes."


def test_mistakes_get_a_private_explanation_and_change_nothing(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    assert "not a Slack user mention" in command(bot, LEAD, "exempt @bob 1d on leave")
    assert "at most 14d" in command(bot, LEAD, "exempt <@UBOB|bob> 15d on leave")
    assert "Unknown command" in command(bot, LEAD, "silence everyone")
    assert exemptions(bot) == []
    command(bot, LEAD, "exempt <@UBOB|bob> 1d on leave")
    assert "already exempt" in command(bot, LEAD, "exempt <@UBOB|bob> 2d still on leave")
    assert len(exemptions(bot)) == 1
