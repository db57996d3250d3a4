"""App Home: signed ``app_home_opened`` requests to the real ``/slack/events`` make the bot
publish (``views.publish``, recorded by the fake Slack) each person's own Home tab."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from securitybot.demo import FakeSlack, app_home_opened_body, home_action_body, slash_command_body
from securitybot.slack.app_home import REVOKE_ACTION
from securitybot.slack.messages import (
    CLAIM_ACTION,
    CONFIRM_ACTION,
    DENY_ACTION,
    WRONG_PERSON_ACTION,
)
from securitybot.store.models import AuditLog, Snooze, utcnow
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import Bot, wait_until

LEAD = "USECLEAD"
TEAM = {"escalation": {"responders": [LEAD]}}


@pytest.fixture
def team_fs(fs: FakeSlack) -> FakeSlack:
    fs.add_user(LEAD, "lead@example.com", real_name="Sam Lead", first_name="Sam")
    return fs


def open_home(bot: Bot, user: str) -> dict[str, Any]:
    before = len(bot.fs.calls_to("views.publish"))
    assert bot.slack_post(app_home_opened_body(user)).status_code == 200
    calls = wait_until(
        lambda: [c for c in bot.fs.calls_to("views.publish")[before:] if c.response.get("ok")],
        what="views.publish",
    )
    assert calls[-1].params["user_id"] == user
    view = bot.fs.home(user)
    assert view is not None and view["type"] == "home"
    return view


def text_of(view: dict[str, Any]) -> str:
    return str(view["blocks"])


def actions(view: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for b in view["blocks"]:
        for e in b.get("elements", []) if b["type"] == "actions" else []:
            out.append((e["action_id"], e["value"]))
        if "accessory" in b:
            out.append((b["accessory"]["action_id"], b["accessory"]["value"]))
    return out


def test_an_employee_sees_and_answers_their_open_alert_from_app_home(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    alert = bot.post_alert()
    bot.wait_status(alert["id"], "awaiting_ack")
    view = open_home(bot, "UALICE")
    assert "flurb -export on accountingserver01" in text_of(view)
    assert "Waiting for your answer" in text_of(view)
    assert set(actions(view)) == {
        (CONFIRM_ACTION, str(alert["id"])),
        (DENY_ACTION, str(alert["id"])),
        (WRONG_PERSON_ACTION, str(alert["id"])),
    }  # fmt: skip — the DM's own buttons; nothing of the team's
    assert "Security team" not in text_of(view)

    # Clicking "yes" in the Home tab runs the same flow as in the DM.
    click = home_action_body(user="UALICE", action_id=CONFIRM_ACTION, value=str(alert["id"]))
    assert bot.slack_post(click).status_code == 200
    push = bot.fd.wait_for_push(timeout=10)
    bot.fd.answer_push(push.txid, "allow")
    assert bot.wait_status(alert["id"], "resolved")["outcome"] == "confirmed"

    view = open_home(bot, "UALICE")
    assert "Nothing needs your answer" in text_of(view)
    assert f"#{alert['id']} flurb -export" in text_of(view) and "confirmed by you" in text_of(view)
    assert actions(view) == []


def test_someone_else_sees_nothing_of_alices_alerts(team_fs: FakeSlack, make_bot: MakeBot) -> None:
    bot = make_bot(**TEAM)
    alert = bot.post_alert()
    bot.wait_status(alert["id"], "awaiting_ack")
    view = open_home(bot, "UMALLORY")
    assert "accountingserver01" not in text_of(view) and actions(view) == []
    # A forged click from Mallory's Home on Alice's alert is refused and logged.
    bot.slack_post(home_action_body(user="UMALLORY", action_id=DENY_ACTION, value=str(alert["id"])))
    wait_until(lambda: bot.audit(alert["id"], "answer.refused"), what="the refusal")
    assert bot.alert(alert["id"])["status"] == "awaiting_ack"


def test_a_responder_sees_the_queue_and_team_lists_and_claims_and_revokes_from_home(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    escalated = bot.post_alert(user="bob@example.com", kind="ssh_key_added", title="key added")
    bot.wait_status(escalated["id"], "awaiting_ack")
    bot.click("UBOB", WRONG_PERSON_ACTION, escalated["id"])
    bot.wait_status(escalated["id"], "escalated")
    bot.slack_post(slash_command_body(user=LEAD, text="exempt <@UMALLORY|m> 1d on leave"))
    bot.slack_post(slash_command_body(user=LEAD, text="suppress sensitive_command host=ci-* 2h CI"))
    with bot.db.write() as session:
        session.add(Snooze(user_id="UALICE", kind="sensitive_command", scope={"host": "h1"},
                           scope_key="k", created_at=utcnow(),
                           expires_at=utcnow() + timedelta(hours=1)))  # fmt: skip

    view = open_home(bot, LEAD)
    text = text_of(view)
    assert "Escalation queue* (1)" in text and "wrong_person" in text
    assert "Active exemptions* (1)" in text and "on leave" in text
    assert "Active snoozes* (1)" in text and "host=h1" in text
    assert "Suppression rules* (1)" in text and "sensitive_command host=ci-*" in text
    found = actions(view)
    assert (CLAIM_ACTION, str(escalated["id"])) in found
    revokes = sorted(v for a, v in found if a == REVOKE_ACTION)
    assert [v[0] for v in revokes] == ["E", "R", "S"]

    bot.slack_post(home_action_body(user=LEAD, action_id=CLAIM_ACTION, value=str(escalated["id"])))
    assert bot.wait_status(escalated["id"], "triaging")["claimed_by"] == LEAD

    before = len(bot.fs.calls_to("views.publish"))
    for item in revokes:
        bot.slack_post(home_action_body(user=LEAD, action_id=REVOKE_ACTION, value=item))
    # Each revoke republishes the Home tab, now without what was revoked. (Waited for by what
    # the tab shows: the claim's own republish may land after `before` and count as one.)
    wait_until(lambda: len(bot.fs.calls_to("views.publish")) >= before + 3, what="republished")

    def revoke_buttons() -> list[str] | None:
        view = bot.fs.home(LEAD)
        return None if view is None else [a for a, _ in actions(view) if a == REVOKE_ACTION]

    wait_until(lambda: revoke_buttons() == [], what="the Home tab without what was revoked")
    with bot.db.read() as session:
        rows = session.scalars(
            select(AuditLog).where(AuditLog.details["via"].as_string() == "slack_app_home")
        ).all()
        assert sorted(r.action for r in rows) == [
            "exemption.deleted", "snooze.revoked", "suppression.revoked",
        ]  # fmt: skip
        assert {r.actor for r in rows} == {LEAD}


def test_a_non_responder_cannot_revoke_from_a_forged_home_click(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    bot.slack_post(slash_command_body(user=LEAD, text="suppress sensitive_command 2h deploy"))
    bot.slack_post(home_action_body(user="UMALLORY", action_id=REVOKE_ACTION, value="R1"))

    def refused() -> list[AuditLog]:
        with bot.db.read() as session:
            q = select(AuditLog).where(AuditLog.action == "command.refused")
            return list(session.scalars(q))

    [row] = wait_until(refused, what="the refusal")
    assert (row.actor, row.details["reason"]) == ("UMALLORY", "not a responder")
    assert "Suppression rules* (1)" in text_of(open_home(bot, LEAD))
