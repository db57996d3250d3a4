"""Enterprise Grid with an org-wide install: one bot token for the org, people in two of its
workspaces, and one in a workspace the app was never added to.

The fake answers as Slack documents org-wide installs: ``auth.test`` with
``is_enterprise_install: true``, ``auth.teams.list`` with the workspaces the app was added to,
``users.info`` / ``users.lookupByEmail`` with the ``enterprise_user.teams`` block, and
``usergroups.users.list`` answering ``missing_argument`` without ``team_id`` for an org token.
Events and clicks carry the ``authorizations`` block / ``is_enterprise_install`` of an org-wide
install (api.slack.com/enterprise/apps/reference)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from securitybot.demo import FakeSlack
from securitybot.demo.slack_event_bodies import app_home_opened_body, message_event_body
from securitybot.demo.slack_interaction_bodies import block_action_body, slash_command_body
from securitybot.slack.messages import CLAIM_ACTION, COMPROMISE_ACTION, CONFIRM_ACTION, DENY_ACTION
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import SECURITY_CHANNEL, Bot, ok_calls, wait_until

ORG = "E1"
LEAD = "WSECLEAD"  # an org-level user id (W…), in both workspaces


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    """The org E1: the app installed org-wide and added to T1 and T2, not to T3."""
    with FakeSlack(team_id="T1", enterprise_id=ORG, org_install=True,
                   workspaces=["T1", "T2"]) as fake:  # fmt: skip
        fake.add_user("UALICE", "alice@example.com", real_name="Alice Liddell", teams=["T1"])
        fake.add_user("WBOB", "bob@example.com", real_name="Bob Builder", teams=["T2"])
        fake.add_user("WCAROL", "carol@example.com", real_name="Carol", teams=["T3"])
        fake.add_user(LEAD, "lead@example.com", real_name="Sam Lead", teams=["T1", "T2"])
        fake.add_usergroup("S0SECTEAM", [LEAD])
        fake.add_channel(SECURITY_CHANNEL)
        fake.admin_token = "xoxp-admin"
        yield fake


GRID = {"escalation": {"responders": ["S0SECTEAM"]}}


def click(
    bot: Bot, user: str, team: str, action: str, alert_id: int, channel: str
) -> httpx.Response:
    body = block_action_body(user=user, action_id=action, value=str(alert_id), channel=channel,
                             message_ts="1.0", team=team, enterprise=ORG,
                             response_url=bot.fs.response_url())  # fmt: skip
    return bot.slack_post(body)


def test_a_person_in_each_workspace_is_asked_and_answers(make_bot: MakeBot) -> None:
    bot = make_bot(**GRID)
    # Alice, in T1, confirms and approves the push.
    alice = bot.post_alert(dedup_key="grid-alice")
    bot.wait_status(alice["id"], "awaiting_ack")
    assert click(bot, "UALICE", "T1", CONFIRM_ACTION, alice["id"], "DUALICE").status_code == 200
    push = bot.fd.wait_for_push(timeout=10)
    assert push.username == bot.push_user("alice@example.com")
    bot.fd.answer_push(push.txid, "allow")
    assert bot.wait_status(alice["id"], "resolved")["outcome"] == "confirmed"

    # Bob, known by his org-level id W… in T2, says "no" in the DM: an event to the org install.
    bob = bot.post_alert(dedup_key="grid-bob", user="bob@example.com")
    asked = bot.wait_status(bob["id"], "awaiting_ack")
    assert asked["user_id"] == "WBOB"
    assert ok_calls(bot.fs, "chat.postMessage", "DWBOB")
    for word in ("no", "confirm"):  # a typed "no" is confirmed once before it pages anyone
        said = message_event_body(user="WBOB", text=word, channel="DWBOB", team="T2",
                                  enterprise=ORG)  # fmt: skip
        assert bot.slack_post(said).status_code == 200
        if word == "no":
            wait_until(lambda: bot.audit(bob["id"], "answer.denial_pending"), 10, "asked again")
    assert bot.wait_status(bob["id"], "escalated")["escalation_reason"] == "not_me"
    post = bot.wait_security_post()
    assert f"#{bob['id']}" in post.params["text"]

    # A responder (a member of a user group: usergroups.users.list needs team_id with an org
    # token) confirms the compromise from T2; the org admin's token resets Bob's sessions.
    resp = click(bot, LEAD, "T2", COMPROMISE_ACTION, bob["id"], SECURITY_CHANNEL)
    assert resp.status_code == 200
    assert bot.wait_status(bob["id"], "closed")["outcome"] == "compromised"
    wait_until(lambda: bot.fs.session_resets, 10, "session reset")
    assert bot.fs.session_resets == ["WBOB"]
    groups = bot.fs.calls_to("usergroups.users.list")
    assert groups and all(c.params.get("team_id") in ("T1", "T2") for c in groups)
    assert all(c.response.get("ok") for c in groups)
    resets = bot.fs.calls_to("admin.users.session.reset")
    assert [c.headers.get("Authorization") for c in resets] == ["Bearer xoxp-admin"]


def test_someone_in_a_workspace_without_the_app_escalates_as_not_reachable(
    make_bot: MakeBot,
) -> None:
    bot = make_bot(**GRID)
    wait_until(lambda: bot.fs.calls_to("auth.teams.list"), 10, "the org's workspaces listed")
    alert = bot.post_alert(dedup_key="grid-carol", user="carol@example.com")
    escalated = bot.wait_status(alert["id"], "escalated")
    assert escalated["escalation_reason"] == "not_reachable"
    post = bot.wait_security_post()
    assert "not_reachable" in post.params["text"]
    assert not ok_calls(bot.fs, "conversations.open")
    assert not ok_calls(bot.fs, "chat.postMessage", "DWCAROL")


def test_only_the_org_wide_install_serves_every_workspace_of_the_org(make_bot: MakeBot) -> None:
    bot = make_bot(**GRID)
    alert = bot.post_alert(dedup_key="grid-guard")
    bot.wait_status(alert["id"], "awaiting_ack")
    # Another org's install, or a per-workspace install of the app in a workspace of ours that
    # is not configured (no is_enterprise_install), is refused as before.
    other_org = block_action_body(user="UALICE", action_id=CONFIRM_ACTION, value=str(alert["id"]),
                                  channel="DUALICE", message_ts="1.0", team="T9",
                                  enterprise="E9")  # fmt: skip
    assert bot.slack_post(other_org).status_code == 403
    per_workspace = message_event_body(user="UALICE", text="yes", channel="DUALICE", team="T9")
    assert bot.slack_post(per_workspace).status_code == 403
    assert bot.alert(alert["id"])["status"] == "awaiting_ack"


EU_CHANNEL = "CEUSECURITY"
EU_LEAD = "WEULEAD"


def test_escalations_follow_the_persons_workspace_and_its_responders_triage(
    fs: FakeSlack, make_bot: MakeBot
) -> None:
    """escalation.routes: Bob's workspace (T2) escalates to its own channel, where its own
    responder may triage; Alice (T1, no route) still goes to slack.security_channel."""
    fs.add_channel(EU_CHANNEL)
    fs.add_user(EU_LEAD, "eu-lead@example.com", real_name="Eu Lead", teams=["T2"])
    route = {"team_id": "T2", "channel": EU_CHANNEL, "responders": [EU_LEAD]}
    bot = make_bot(escalation={"responders": ["S0SECTEAM"], "routes": [route]})
    bob = bot.post_alert(dedup_key="route-bob", user="bob@example.com")
    alice = bot.post_alert(dedup_key="route-alice")
    for alert in (bob, alice):
        bot.wait_status(alert["id"], "awaiting_ack")
    said = message_event_body(user="WBOB", text="not me", channel="DWBOB", team="T2",
                              enterprise=ORG)  # fmt: skip
    assert bot.slack_post(said).status_code == 200
    assert click(bot, "UALICE", "T1", DENY_ACTION, alice["id"], "DUALICE").status_code == 200
    wait_until(lambda: bot.audit(bob["id"], "answer.denial_pending"), 10, "Bob asked again")
    confirm = message_event_body(user="WBOB", text="confirm", channel="DWBOB", team="T2",
                                 enterprise=ORG)  # fmt: skip
    assert bot.slack_post(confirm).status_code == 200
    for alert in (bob, alice):
        bot.wait_status(alert["id"], "escalated")
    eu = wait_until(lambda: ok_calls(bot.fs, "chat.postMessage", EU_CHANNEL), 10, "EU post")
    assert [f"#{bob['id']}" in c.params["text"] for c in eu] == [True]
    main = wait_until(lambda: bot.security_posts(), 10, "security channel post")
    assert [f"#{alice['id']}" in c.params["text"] for c in main] == [True]
    wait_until(lambda: bot.row(bob["id"]).escalation_channel == EU_CHANNEL, 10, "stored")

    # The EU lead may triage Bob's alert (routed to their channel), not Alice's.
    assert click(bot, EU_LEAD, "T2", CLAIM_ACTION, alice["id"], SECURITY_CHANNEL).status_code == 200
    wait_until(lambda: bot.audit(alice["id"], "triage.refused"), 10, "refused")
    assert bot.alert(alice["id"])["status"] == "escalated"
    assert click(bot, EU_LEAD, "T2", CLAIM_ACTION, bob["id"], EU_CHANNEL).status_code == 200
    assert bot.wait_status(bob["id"], "triaging")["claimed_by"] == EU_LEAD


def test_app_home_and_the_slash_command_work_from_the_second_workspace(
    make_bot: MakeBot,
) -> None:
    bot = make_bot(**GRID)
    bob = bot.post_alert(dedup_key="grid-home", user="bob@example.com")
    bot.wait_status(bob["id"], "awaiting_ack")
    opened = app_home_opened_body("WBOB", team="T2", enterprise=ORG)
    assert bot.slack_post(opened).status_code == 200
    wait_until(lambda: bot.fs.home("WBOB"), 10, "Bob's Home tab published")
    home = bot.fs.home("WBOB")
    assert home is not None and "flurb -export on accountingserver01" in str(home["blocks"])

    typed = slash_command_body(user="WBOB", text="status", team="T2", enterprise=ORG,
                               org_wide=True)  # fmt: skip
    resp = bot.slack_post(typed)
    assert resp.status_code == 200, resp.text
    assert resp.json()["response_type"] == "ephemeral"
    assert f"#{bob['id']}" in resp.json()["text"]
