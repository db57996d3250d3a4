"""Requests signed with our signing secret but from a workspace (team) or Enterprise Grid org
the app does not serve are refused with 403 and audited, for every request type: slash
commands, interactions and events. A Slack app's signing secret is per app, so another
workspace the app is installed in signs its requests with the same secret."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from securitybot.demo import (
    FakeSlack,
    app_uninstalled_body,
    block_action_body,
    message_event_body,
    slash_command_body,
)
from securitybot.slack.messages import DENY_ACTION
from securitybot.store.models import AuditLog
from securitybot.store.suppression_models import SuppressionRule
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import Bot, wait_until

LEAD = "USECLEAD"
TEAM = {"escalation": {"responders": [LEAD]}}
SUPPRESS = "suppress sensitive_command host=build-* 4h maintenance"


@pytest.fixture
def team_fs(fs: FakeSlack) -> FakeSlack:
    fs.add_user(LEAD, "lead@example.com", real_name="Sam Lead", first_name="Sam")
    return fs


def _rules(bot: Bot) -> int:
    with bot.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(SuppressionRule)) or 0)


def _refusals(bot: Bot) -> list[AuditLog]:
    with bot.db.read() as session:
        q = select(AuditLog).where(AuditLog.action == "slack.request_refused")
        return list(session.scalars(q.order_by(AuditLog.id)))


def test_a_slash_command_from_another_workspace_is_refused_and_audited(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    resp = bot.slack_post(slash_command_body(user=LEAD, text=SUPPRESS, team="TOTHER"))
    assert resp.status_code == 403
    assert resp.json()["error"] == "team_not_served"
    assert _rules(bot) == 0
    [row] = _refusals(bot)
    assert row.actor == LEAD
    assert row.details["reason"] == "foreign_team"
    assert row.details["team_id"] == "TOTHER"
    assert (
        'securitybot_slack_requests_refused_total{reason="foreign_team"}'
        in bot.http.get("/metrics").text
    )

    # The same command from our own workspace (T1, from auth.test) works.
    assert bot.slack_post(slash_command_body(user=LEAD, text=SUPPRESS)).status_code == 200
    wait_until(lambda: _rules(bot) == 1, 5, "the rule from our own workspace")


def test_clicks_and_events_from_another_workspace_change_nothing(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    alert = bot.post_alert()
    bot.wait_status(alert["id"], "awaiting_ack")
    click = block_action_body(user="UALICE", action_id=DENY_ACTION, value=str(alert["id"]),
                              channel="DUALICE", message_ts="1.0", team="TOTHER",
                              response_url=bot.fs.response_url())  # fmt: skip
    assert bot.slack_post(click).status_code == 403
    said = message_event_body(user="UALICE", text="no", channel="DUALICE", team="TOTHER")
    assert bot.slack_post(said).status_code == 403
    assert bot.alert(alert["id"])["status"] == "awaiting_ack"
    kinds = sorted(r.details["type"] for r in _refusals(bot))
    assert kinds == ["block_actions", "event_callback"]


def test_enterprise_and_configured_teams(team_fs: FakeSlack, make_bot: MakeBot) -> None:
    bot = make_bot(
        escalation={"responders": [LEAD]},
        slack={"team_ids": ["T2"], "enterprise_ids": ["E1"]},
    )
    # A workspace listed in slack.team_ids is served besides the bot's own.
    assert bot.slack_post(slash_command_body(user=LEAD, text="rules", team="T2")).status_code == 200
    # An Enterprise Grid org other than ours is refused, even naming a served workspace.
    other_org = slash_command_body(user=LEAD, text=SUPPRESS, team="T2", enterprise="E9")
    assert bot.slack_post(other_org).status_code == 403
    assert (
        bot.slack_post(slash_command_body(user=LEAD, text="rules", enterprise="E1")).status_code
        == 200
    )
    assert [json.dumps(r.details["reason"]) for r in _refusals(bot)] == ['"foreign_enterprise"']
    assert _rules(bot) == 0


def test_a_strangers_event_while_our_team_is_unknown_teaches_the_guard_nothing(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    """The start-up auth.test failed (Slack's documented ``internal_error``,
    docs.slack.dev/reference/methods/auth.test): the guard learns our team from
    slack.bot_token's own auth.test, not from the team another workspace's event names
    (Bolt names the sender's for app_uninstalled without asking anyone)."""
    team_fs.fail_next("auth.test", error="internal_error")
    bot = make_bot(**TEAM)
    wait_until(lambda: [c for c in team_fs.calls_to("auth.test") if not c.response.get("ok")],
               10, "the start-up check failing")  # fmt: skip
    assert bot.slack_post(app_uninstalled_body("T9")).status_code == 403
    stranger = bot.slack_post(slash_command_body(user=LEAD, text="rules", team="T9"))
    assert stranger.status_code == 403, stranger.text
    home = bot.slack_post(slash_command_body(user=LEAD, text="rules"))
    assert home.status_code == 200, home.text
    assert {r.details["team_id"] for r in _refusals(bot)} == {"T9"}
