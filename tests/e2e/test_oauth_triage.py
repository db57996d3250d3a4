"""Triage and session reset for people of workspaces installed through OAuth (issue 30, item 5).

The security team triages in the home workspace's channel (slack.bot_token). Resetting the
sessions of the person an alert is about needs ``admin.users.session.reset``, an Enterprise
Grid admin API (api.slack.com/methods/admin.users.session.reset: "This API method can only be
used on Enterprise Grid workspaces"): the home ``slack.admin_token`` belongs to the home org and
cannot reset anyone of another workspace. So Green, a workspace of another Grid org whose org
admin granted the user scope ``admin.users:write`` at install, is reset with that user token;
Blue, outside Grid, cannot be reset at all, and the team is told so, in the escalation post and
in the audit log, without Slack being called with a token that cannot do it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from securitybot.demo import FakeSlack, view_submission_body
from securitybot.demo.slack_event_bodies import message_event_body
from securitybot.demo.slack_interaction_bodies import block_action_body
from securitybot.slack.messages import (
    BENIGN_ACTION,
    BENIGN_MODAL,
    CLAIM_ACTION,
    COMPROMISE_ACTION,
)
from securitybot.slack.triage import NOTE_ACTION, NOTE_BLOCK
from securitybot.store.slack_installations import METADATA
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import SECURITY_CHANNEL, Bot, ok_calls, wait_until
from tests.e2e.test_oauth_workspaces import (
    BLUE,
    CLIENT_ID,
    CLIENT_SECRET,
    GREEN,
    auth,
    install,
    oauth_config,
    sign_in,
    token_of,
    two_workspaces,
)

LEAD = "USECLEAD"
GREEN_ORG = "E0GREEN"


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with two_workspaces((LEAD, "lead@example.com", "Sam Lead")) as fake:
        yield fake


def start(fs: FakeSlack, make_bot: MakeBot) -> Bot:
    config: dict[str, Any] = oauth_config(fs)
    config["slack"]["oauth"]["user_scopes"] = ["admin.users:write"]
    config["escalation"] = {"responders": [LEAD]}
    bot = make_bot(**config)
    sign_in(bot)
    # "Add to Slack" asks the installer for the user scope (Slack's user_scope parameter).
    start = bot.http.get("/dashboard/slack/install/start").headers["location"]
    assert parse_qs(urlsplit(start).query)["user_scope"] == ["admin.users:write"]
    install(bot, BLUE, "Blue Co", "UBOB")
    install(bot, GREEN, "Green Co", "UCAROL", user_scopes=["admin.users:write"],
            enterprise=GREEN_ORG)  # fmt: skip
    return bot


def escalate(bot: Bot, user: str, team: str, key: str, channel: str = SECURITY_CHANNEL) -> int:
    """``user`` says no in their DM (and confirms): the alert goes to the security channel."""
    alert = bot.post_alert(dedup_key=key, user=bot.fs.users[user]["profile"]["email"])
    bot.wait_status(alert["id"], "awaiting_ack")
    for word in ("no", "confirm"):
        said = message_event_body(user=user, text=word, channel=f"D{user}", team=team)
        assert bot.slack_post(said).status_code == 200
        if word == "no":
            wait_until(lambda: bot.audit(alert["id"], "answer.denial_pending"), 10, "asked again")
    bot.wait_status(alert["id"], "escalated")
    wait_until(lambda: bot.row(alert["id"]).escalation_ts, 10, "escalation posted")
    assert bot.row(alert["id"]).escalation_channel == channel
    return int(alert["id"])


def triage(bot: Bot, action: str, alert_id: int) -> None:
    body = block_action_body(user=LEAD, action_id=action, value=str(alert_id),
                             channel=SECURITY_CHANNEL, message_ts="1.0",
                             response_url=bot.fs.response_url())  # fmt: skip
    assert bot.slack_post(body).status_code == 200


def resets(fs: FakeSlack, user: str) -> list[Any]:
    return [c for c in fs.calls_to("admin.users.session.reset") if c.params.get("user_id") == user]


def shown(fs: FakeSlack, needle: str) -> list[Any]:
    return [c for c in ok_calls(fs, "chat.update", SECURITY_CHANNEL)
            if needle in json.dumps(c.params.get("blocks"))]  # fmt: skip


def test_triage_and_session_reset_for_people_of_two_installed_workspaces(
    fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = start(fs, make_bot)

    # Bob, of Blue (outside Grid): claimed, then his compromise confirmed.
    bob = escalate(bot, "UBOB", BLUE, "triage-bob")
    triage(bot, CLAIM_ACTION, bob)
    wait_until(lambda: bot.audit(bob, "alert.claimed"), 10, "claimed")
    wait_until(lambda: shown(fs, "Being triaged by"), 10, "the post says who triages")
    triage(bot, COMPROMISE_ACTION, bob)
    assert bot.wait_status(bob, "closed")["outcome"] == "compromised"
    [failed] = wait_until(lambda: bot.audit(bob, "user.sessions_reset_failed"), 10, "audited")
    assert failed.details["error"] == "session_reset_unavailable"
    assert failed.details["team"] == BLUE and failed.details["workspace"] == "Blue Co"
    assert failed.subject_user == "UBOB"
    # Slack was never asked with a token that cannot reset Bob (the home org's admin token).
    assert not resets(fs, "UBOB") and fs.session_resets == []
    # The team sees why in the escalation post.
    [update, *_] = wait_until(lambda: shown(fs, "Sessions *not* reset"), 10, "post updated")
    assert "Blue Co" in json.dumps(update.params["blocks"])
    assert not bot.audit(bob, "user.sessions_reset")

    # Carol, of Green (another Grid org, its org admin granted admin.users:write): reset with
    # Green's user token.
    carol = escalate(bot, "UCAROL", GREEN, "triage-carol")
    triage(bot, COMPROMISE_ACTION, carol)
    assert bot.wait_status(carol, "closed")["outcome"] == "compromised"
    wait_until(lambda: fs.session_resets == ["UCAROL"], 10, "Carol's sessions reset")
    [reset] = resets(fs, "UCAROL")
    assert auth(reset) == f"Bearer xoxp-{GREEN}-user"
    wait_until(lambda: bot.audit(carol, "user.sessions_reset"), 10, "reset audited")
    wait_until(lambda: shown(fs, "sessions reset"), 10, "the post shows the reset")

    # A second alert of Bob's is benign: the modal opens from the team's channel.
    bob2 = escalate(bot, "UBOB", BLUE, "triage-bob-2")
    triage(bot, BENIGN_ACTION, bob2)
    [view] = wait_until(lambda: ok_calls(fs, "views.open"), 10, "the modal")
    assert view.params["view"]["callback_id"] == BENIGN_MODAL
    submit = view_submission_body(user=LEAD, callback_id=BENIGN_MODAL,
                                  private_metadata=str(bob2),
                                  values={NOTE_BLOCK: {NOTE_ACTION: {
                                      "type": "plain_text_input", "value": "Travel"}}})  # fmt: skip
    assert bot.slack_post(submit).status_code == 200
    assert bot.wait_status(bob2, "closed")["outcome"] == "benign"

    # Everything in the security channel went out with slack.bot_token; every DM with the
    # token of its person's workspace.
    assert {auth(c) for c in fs.calls if c.params.get("channel") == SECURITY_CHANNEL} == {
        "Bearer xoxb-e2e"
    }
    for user, team in (("UBOB", BLUE), ("UCAROL", GREEN)):
        assert {auth(c) for c in ok_calls(fs, "chat.postMessage", f"D{user}")} == {
            f"Bearer {token_of(bot, team)}"
        }


def test_the_fake_answers_a_workspace_outside_grid_as_slack_documents(fs: FakeSlack) -> None:
    """admin.users.session.reset with the user token of a workspace outside Enterprise Grid:
    Slack's documented "feature_not_enabled" (This method is not available for this product
    level), even when the token claims the scope."""
    import httpx

    code = fs.grant_install(BLUE, "Blue Co", "UBOB", user_scopes=["admin.users:write"])
    resp = httpx.post(f"{fs.base_url}oauth.v2.access", data={"code": code},
                      auth=(CLIENT_ID, CLIENT_SECRET))  # fmt: skip
    user_token = resp.json()["authed_user"]["access_token"]
    answer = httpx.post(f"{fs.base_url}admin.users.session.reset", data={"user_id": "UBOB"},
                        headers={"Authorization": f"Bearer {user_token}"})  # fmt: skip
    assert answer.json() == {"ok": False, "error": "feature_not_enabled"}
    assert fs.session_resets == []


BLUE_CHANNEL = "CBLUESECURITY"
BLUE_TEAM_GROUP = "SBLUESEC"


def test_triage_in_an_installed_workspaces_own_channel_uses_its_token(
    fs: FakeSlack, make_bot: MakeBot
) -> None:
    """escalation.routes: Blue's escalations go to Blue's channel, triaged by Blue's own
    security group (a user group of Blue, read with Blue's token); every call of the triage
    (membership, refusal, the post's updates) goes out with Blue's token."""
    fs.add_channel(BLUE_CHANNEL)
    fs.add_user("UBLUELEAD", "bluelead@example.com", real_name="Blue Lead", teams=[BLUE])
    fs.add_usergroup(BLUE_TEAM_GROUP, ["UBLUELEAD"], team=BLUE)
    config: dict[str, Any] = oauth_config(fs)
    config["escalation"] = {"responders": [LEAD], "routes": [
        {"team_id": BLUE, "channel": BLUE_CHANNEL, "responders": [BLUE_TEAM_GROUP]}]}  # fmt: skip
    bot = make_bot(**config)
    sign_in(bot)
    install(bot, BLUE, "Blue Co", "UBOB")
    installed = len(fs.calls)
    bob = escalate(bot, "UBOB", BLUE, "routed-triage-bob", channel=BLUE_CHANNEL)
    blue = f"Bearer {token_of(bot, BLUE)}"

    def click(user: str, action: str) -> None:
        body = block_action_body(user=user, action_id=action, value=str(bob),
                                 channel=BLUE_CHANNEL, message_ts="1.0", team=BLUE,
                                 response_url=fs.response_url())  # fmt: skip
        assert bot.slack_post(body).status_code == 200

    # Bob may not triage his own alert: refused, told with Blue's token.
    click("UBOB", COMPROMISE_ACTION)
    wait_until(lambda: bot.audit(bob, "triage.refused"), 10, "refusal audited")
    [told] = wait_until(lambda: [c for c in fs.calls_to("chat.postEphemeral")
                                 if c.params.get("user") == "UBOB"], 10, "Bob told")  # fmt: skip
    assert auth(told) == blue
    # Blue's lead, a member of Blue's group, claims and confirms the compromise.
    click("UBLUELEAD", CLAIM_ACTION)
    wait_until(lambda: bot.audit(bob, "alert.claimed"), 10, "claimed")
    [lookup, *_] = fs.calls_to("usergroups.users.list")
    assert auth(lookup) == blue and lookup.response["ok"]
    click("UBLUELEAD", COMPROMISE_ACTION)
    assert bot.wait_status(bob, "closed")["outcome"] == "compromised"
    wait_until(lambda: bot.audit(bob, "user.sessions_reset_failed"), 10, "reset unavailable")
    updates = wait_until(
        lambda: [c for c in ok_calls(fs, "chat.update", BLUE_CHANNEL)
                 if "Sessions *not* reset" in json.dumps(c.params.get("blocks"))],
        10, "Blue's post shows it",
    )  # fmt: skip
    assert {auth(c) for c in updates} == {blue}
    # (Before Blue was installed, start-up's channel check could only use slack.bot_token.)
    since = [c for c in fs.calls[installed:] if c.params.get("channel") == BLUE_CHANNEL]
    assert since and {auth(c) for c in since} == {blue}
    assert not bot.security_posts() and not fs.calls_to("admin.users.session.reset")


def test_a_rotated_admin_user_token_is_refreshed_before_the_reset(
    fs: FakeSlack, make_bot: MakeBot
) -> None:
    """Token rotation on: the installer's user token expires too; it is exchanged before the
    reset, and saving the new one keeps Green's current bot token."""
    fs.token_rotation = True
    fs.token_lifetime = 7201  # seconds; refreshed 2 h ahead: at once
    config: dict[str, Any] = oauth_config(
        fs, refresh_before="2h", user_scopes=["admin.users:write"]
    )
    config["escalation"] = {"responders": [LEAD]}
    bot = make_bot(**config)
    sign_in(bot)
    install(bot, GREEN, "Green Co", "UCAROL", user_scopes=["admin.users:write"],
            enterprise=GREEN_ORG)  # fmt: skip
    first = fs.calls_to("oauth.v2.access")[0].response["authed_user"]
    assert first["refresh_token"].startswith("xoxe-1-u-")
    carol = escalate(bot, "UCAROL", GREEN, "rotated-carol")
    time.sleep(2.0)  # expires_at is whole seconds: now within refresh_before of it
    triage(bot, COMPROMISE_ACTION, carol)
    wait_until(lambda: fs.session_resets == ["UCAROL"], 10, "Carol's sessions reset")
    [reset] = resets(fs, "UCAROL")
    assert auth(reset) != f"Bearer {first['access_token']}"
    assert auth(reset).startswith("Bearer xoxe.xoxp-1-TGREEN-")
    refreshed = [c for c in fs.calls_to("oauth.v2.access")
                 if c.params.get("refresh_token") == first["refresh_token"]]  # fmt: skip
    assert refreshed and refreshed[0].response["token_type"] == "user"
    # Saving the new user token kept Green's newest bot token (slack_sdk saves the bot with
    # the installation): the newest bot row holds the last bot token Slack issued.
    issued = [c.response["access_token"] for c in fs.calls_to("oauth.v2.access")
              if str(c.response.get("access_token", "")).startswith("xoxe.xoxb-")]  # fmt: skip
    bots = METADATA.tables["slack_bots"]
    with bot.db.engine.connect() as conn:
        newest = conn.execute(select(bots.c.bot_token).where(bots.c.team_id == GREEN)
                              .order_by(bots.c.id.desc())).first()  # fmt: skip
    assert newest is not None and newest.bot_token == issued[-1]
