"""Several workspaces without Enterprise Grid: the home workspace keeps slack.bot_token (and the
security channel); two more install the app through Slack's OAuth flow from the dashboard.

The fake answers ``oauth.v2.access`` with Slack's documented example response
(securitybot/demo/slack_examples.OAUTH_V2_ACCESS) for the workspace the code was granted for,
and a workspace's bot token sees that workspace's people only, as on Slack: a person is found,
asked and answered with the token of the workspace they are in."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from securitybot.demo import FakeSlack
from securitybot.demo.slack_event_bodies import (
    app_home_opened_body,
    app_uninstalled_body,
    message_event_body,
    tokens_revoked_body,
)
from securitybot.demo.slack_examples import OAUTH_V2_ACCESS
from securitybot.demo.slack_interaction_bodies import block_action_body, slash_command_body
from securitybot.slack.messages import CONFIRM_ACTION
from securitybot.store.slack_installations import METADATA
from tests.dashboard.test_dashboard import HASH, PASSWORD
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import SECURITY_CHANNEL, Bot, ok_calls, wait_until

CLIENT_ID = "2141029472.691202649728"  # the argument's documented example
CLIENT_SECRET = "e1b9e11dfcd19c1982d5de12921e17e8c"
BLUE, GREEN = "TBLUE", "TGREEN"


@contextmanager
def two_workspaces(home_user: tuple[str, str, str]) -> Iterator[FakeSlack]:
    """The fake Slack: ``home_user`` (id, email, name) in the home workspace T1, Bob in Blue
    and Carol in Green (neither installed yet), the security channel and the admin token."""
    with FakeSlack(team_id="T1") as fake:
        fake.add_user(home_user[0], home_user[1], real_name=home_user[2])
        fake.add_user("UBOB", "bob@example.com", real_name="Bob Builder", teams=[BLUE])
        fake.add_user("UCAROL", "carol@example.com", real_name="Carol", teams=[GREEN])
        fake.add_channel(SECURITY_CHANNEL)
        fake.admin_token = "xoxp-admin"
        fake.oauth_client = (CLIENT_ID, CLIENT_SECRET)
        yield fake


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with two_workspaces(("UALICE", "alice@example.com", "Alice Liddell")) as fake:
        yield fake


def oauth_config(fs: FakeSlack, **extra: Any) -> dict[str, Any]:
    return {
        "slack": {"oauth": {
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "redirect_url": "https://securitybot.example.com/slack/oauth_redirect",
            "authorize_url": f"{fs.url}/oauth/v2/authorize", **extra,
        }},
        "dashboard": {"enabled": True, "session_secret": "s" * 40,
                      "users": [{"username": "root", "password_hash": HASH, "role": "admin"}]},
    }  # fmt: skip


def sign_in(bot: Bot) -> None:
    """As the dashboard's admin, once the bot knows its own workspace (auth.test at start)."""
    wait_until(lambda: bot.fs.calls_to("auth.test"), 10, "the start-up check")
    page = bot.http.get("/dashboard/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf, page.text
    resp = bot.http.post("/dashboard/login", data={"csrf": csrf.group(1), "username": "root",
                                                    "password": PASSWORD})  # fmt: skip
    assert resp.status_code == 303, resp.text


def install(bot: Bot, team: str, name: str, installer: str, **grant: Any) -> None:
    """An admin signed in to the dashboard clicks "Add to Slack", approves on Slack's page
    (the fake grants a code, ``grant``: what else it grants) and is sent back to the callback
    with it."""
    start = bot.http.get("/dashboard/slack/install/start")
    assert start.status_code == 302, start.text
    target = urlsplit(start.headers["location"])
    asked = parse_qs(target.query)
    assert target.path == "/oauth/v2/authorize"
    assert asked["client_id"] == [CLIENT_ID]
    assert "chat:write" in asked["scope"][0].split(",") and "im:history" in asked["scope"][0]
    state = asked["state"][0]
    assert f"slack-app-oauth-state={state}" in start.headers["set-cookie"]
    code = bot.fs.grant_install(team, name, installer, **grant)
    back = bot.http.get("/slack/oauth_redirect", params={"code": code, "state": state},
                        headers={"Cookie": f"slack-app-oauth-state={state}"})  # fmt: skip
    assert back.status_code == 303, back.text
    assert back.headers["location"] == f"/dashboard/slack/install?installed={team}"


def token_of(bot: Bot, team: str) -> str:
    [token] = [t for t, owner in bot.fs.workspace_tokens.items() if owner == team]
    return token


def auth(call: Any) -> str:
    return str(call.headers.get("Authorization", ""))


def test_two_workspaces_installed_through_oauth_each_served_with_its_own_token(
    fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**oauth_config(fs))
    sign_in(bot)
    install(bot, BLUE, "Blue Co", "UBOB")
    install(bot, GREEN, "Green Co", "UCAROL")
    page = bot.http.get("/dashboard/slack/install")
    assert page.status_code == 200 and BLUE in page.text and GREEN in page.text
    # The code was exchanged with the app's credentials (HTTP Basic, as Slack prefers).
    exchanges = fs.calls_to("oauth.v2.access")
    assert [c.response.get("team", {}).get("id") for c in exchanges] == [BLUE, GREEN]
    assert all(auth(c).startswith("Basic ") for c in exchanges)

    # Bob, in Blue: found, asked and answered with Blue's token; he confirms from Blue.
    bob = bot.post_alert(dedup_key="blue-bob", user="bob@example.com")
    asked = bot.wait_status(bob["id"], "awaiting_ack")
    assert asked["user_id"] == "UBOB"
    [dm] = bot.dms("UBOB")
    assert auth(dm) == f"Bearer {token_of(bot, BLUE)}"
    click = block_action_body(user="UBOB", action_id=CONFIRM_ACTION, value=str(bob["id"]),
                              channel="DUBOB", message_ts="1.0", team=BLUE,
                              response_url=fs.response_url())  # fmt: skip
    assert bot.slack_post(click).status_code == 200
    push = bot.fd.wait_for_push(timeout=10)
    assert push.username == bot.push_user("bob@example.com")
    bot.fd.answer_push(push.txid, "allow")
    assert bot.wait_status(bob["id"], "resolved")["outcome"] == "confirmed"

    # Carol, in Green, denies in her DM (typed, confirmed once): the escalation goes to the
    # security channel, in the home workspace, with slack.bot_token.
    carol = bot.post_alert(dedup_key="green-carol", user="carol@example.com")
    bot.wait_status(carol["id"], "awaiting_ack")
    [dm] = bot.dms("UCAROL")
    assert auth(dm) == f"Bearer {token_of(bot, GREEN)}"
    for word in ("no", "confirm"):
        said = message_event_body(user="UCAROL", text=word, channel="DUCAROL", team=GREEN)
        assert bot.slack_post(said).status_code == 200
        if word == "no":
            wait_until(lambda: bot.audit(carol["id"], "answer.denial_pending"), 10, "asked again")
    assert bot.wait_status(carol["id"], "escalated")["escalation_reason"] == "not_me"
    post = bot.wait_security_post()
    assert f"#{carol['id']}" in post.params["text"]
    assert auth(post) == "Bearer xoxb-e2e"
    # Nobody was ever asked with another workspace's token.
    for user, team in (("UBOB", BLUE), ("UCAROL", GREEN)):
        assert {auth(c) for c in ok_calls(fs, "chat.postMessage", f"D{user}")} == {
            f"Bearer {token_of(bot, team)}"
        }

    # Green uninstalls the app: from then on it is not served.
    green_token = token_of(bot, GREEN)
    fs.revoke_workspace(GREEN)
    assert bot.slack_post(tokens_revoked_body(GREEN, bot=["UBGREEN"])).status_code == 200
    assert bot.slack_post(app_uninstalled_body(GREEN)).status_code == 200
    wait_until(lambda: not bot_rows(bot, GREEN), 10, "Green's installation deleted")
    assert bot_rows(bot, BLUE)
    said = message_event_body(user="UCAROL", text="yes", channel="DUCAROL", team=GREEN)
    assert bot.slack_post(said).status_code == 403
    before = len(fs.calls)
    again = bot.post_alert(dedup_key="green-carol-2", user="carol@example.com")
    assert bot.wait_status(again["id"], "escalated")["escalation_reason"] == "not_reachable"
    assert not [c for c in fs.calls[before:] if auth(c) == f"Bearer {green_token}"]
    assert not [c for c in fs.calls[before:] if c.params.get("channel") in ("UCAROL", "DUCAROL")]
    # Blue is still served.
    bob2 = bot.post_alert(dedup_key="blue-bob-2", user="bob@example.com")
    bot.wait_status(bob2["id"], "awaiting_ack")


def bot_rows(bot: Bot, team: str) -> list[Any]:
    bots = METADATA.tables["slack_bots"]
    with bot.db.engine.connect() as conn:
        return list(conn.execute(select(bots.c.team_id).where(bots.c.team_id == team)))


def test_a_bot_token_is_refreshed_before_it_expires(fs: FakeSlack, make_bot: MakeBot) -> None:
    """Token rotation on: oauth.v2.access answers a refresh token and expires_in; the bot
    exchanges the refresh token before the token expires and uses the new one."""
    fs.token_rotation = True
    fs.token_lifetime = 7201  # seconds; the bot refreshes 2 h ahead: after one second
    bot = make_bot(**oauth_config(fs, refresh_before="2h"))
    sign_in(bot)
    install(bot, BLUE, "Blue Co", "UBOB")
    first = fs.calls_to("oauth.v2.access")[0].response
    assert first["refresh_token"].startswith("xoxe-1-") and first["expires_in"] == 7201
    time.sleep(1.5)
    bob = bot.post_alert(dedup_key="rotated-bob", user="bob@example.com")
    bot.wait_status(bob["id"], "awaiting_ack")
    refreshes = [c for c in fs.calls_to("oauth.v2.access")
                 if c.params.get("grant_type") == "refresh_token"]  # fmt: skip
    assert refreshes and refreshes[0].params["refresh_token"] == first["refresh_token"]
    [dm] = bot.dms("UBOB")
    assert auth(dm) != f"Bearer {first['access_token']}"
    assert auth(dm).removeprefix("Bearer ").startswith("xoxe.xoxb-1-")
    bots = METADATA.tables["slack_bots"]
    with bot.db.engine.connect() as conn:
        stored = conn.execute(select(bots.c.bot_token).where(bots.c.team_id == BLUE)
                              .order_by(bots.c.id.desc())).first()  # fmt: skip
    assert stored is not None and stored.bot_token != first["access_token"]


def test_the_fake_answers_slacks_documented_example_for_its_workspace(fs: FakeSlack) -> None:
    import httpx

    team = OAUTH_V2_ACCESS["team"]
    code = fs.grant_install(team["id"], team["name"], OAUTH_V2_ACCESS["authed_user"]["id"],
                            bot_user_id=OAUTH_V2_ACCESS["bot_user_id"])  # fmt: skip
    resp = httpx.post(f"{fs.base_url}oauth.v2.access", data={"code": code},
                      auth=(CLIENT_ID, CLIENT_SECRET))  # fmt: skip
    assert resp.json() == OAUTH_V2_ACCESS


BLUE_CHANNEL = "CBLUESECURITY"


def test_an_escalation_routed_to_a_channel_of_an_installed_workspace_uses_its_token(
    fs: FakeSlack, make_bot: MakeBot
) -> None:
    """escalation.routes: Blue's people escalate to Blue's own channel, posted with Blue's
    token; the home workspace's people still go to slack.security_channel."""
    fs.add_channel(BLUE_CHANNEL)
    config = oauth_config(fs)
    config["escalation"] = {"routes": [{"team_id": BLUE, "channel": BLUE_CHANNEL}]}
    bot = make_bot(**config)
    sign_in(bot)
    install(bot, BLUE, "Blue Co", "UBOB")
    bob = bot.post_alert(dedup_key="routed-bob", user="bob@example.com")
    bot.wait_status(bob["id"], "awaiting_ack")
    for word in ("no", "confirm"):
        said = message_event_body(user="UBOB", text=word, channel="DUBOB", team=BLUE)
        assert bot.slack_post(said).status_code == 200
        if word == "no":
            wait_until(lambda: bot.audit(bob["id"], "answer.denial_pending"), 10, "asked again")
    bot.wait_status(bob["id"], "escalated")
    [post] = wait_until(lambda: ok_calls(fs, "chat.postMessage", BLUE_CHANNEL), 10, "Blue post")
    assert f"#{bob['id']}" in post.params["text"]
    assert auth(post) == f"Bearer {token_of(bot, BLUE)}"
    assert not bot.security_posts()


def test_app_home_and_the_slash_command_work_from_an_installed_workspace(
    fs: FakeSlack, make_bot: MakeBot
) -> None:
    """Bolt's authorize gives the listeners the installed workspace's token: Bob's Home tab
    is published with Blue's token, and /securitybot answers him there."""
    bot = make_bot(**oauth_config(fs))
    sign_in(bot)
    install(bot, BLUE, "Blue Co", "UBOB")
    bob = bot.post_alert(dedup_key="blue-home", user="bob@example.com")
    bot.wait_status(bob["id"], "awaiting_ack")
    assert bot.slack_post(app_home_opened_body("UBOB", team=BLUE)).status_code == 200
    wait_until(lambda: fs.home("UBOB"), 10, "Bob's Home tab published")
    [published] = ok_calls(fs, "views.publish")
    assert auth(published) == f"Bearer {token_of(bot, BLUE)}"
    home = fs.home("UBOB")
    assert home is not None and "flurb -export on accountingserver01" in str(home["blocks"])
    resp = bot.slack_post(slash_command_body(user="UBOB", text="status", team=BLUE))
    assert resp.status_code == 200, resp.text
    assert f"#{bob['id']}" in resp.json()["text"]
    # A workspace never installed is still refused.
    foreign = slash_command_body(user="UX", text="status", team="T9")
    assert bot.slack_post(foreign).status_code == 403


def test_a_callback_without_the_state_this_browser_was_given_stores_nothing(
    fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**oauth_config(fs))
    code = fs.grant_install(BLUE, "Blue Co", "UBOB")
    # No install was started: a code (say, phished from an admin) with a made-up state.
    forged = bot.http.get("/slack/oauth_redirect", params={"code": code, "state": "made-up"},
                          headers={"Cookie": "slack-app-oauth-state=made-up"})  # fmt: skip
    assert forged.status_code == 303
    assert forged.headers["location"] == "/dashboard/slack/install?failed=invalid_state"
    # Slack's own ?error= (the admin cancelled) comes back quoted, whatever it holds.
    cancelled = bot.http.get("/slack/oauth_redirect", params={"error": "access_denied\r\n<b>"})
    assert cancelled.headers["location"] == (
        "/dashboard/slack/install?failed=access_denied%0D%0A%3Cb%3E"
    )
    assert not fs.calls_to("oauth.v2.access") and not bot_rows(bot, BLUE)
    # Starting an install needs the dashboard's admin.
    assert bot.http.get("/dashboard/slack/install/start").status_code == 303


def test_an_org_wide_install_through_the_flow_is_not_kept(fs: FakeSlack, make_bot: MakeBot) -> None:
    """Enterprise Grid's org-wide install is slack.bot_token's job (docs/deploy.md): one that
    comes through "Add to Slack" is deleted and the admin told why."""
    bot = make_bot(**oauth_config(fs))
    sign_in(bot)
    start = bot.http.get("/dashboard/slack/install/start")
    state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
    code = fs.grant_install("E0ORG", "Org", "WADMIN", org_wide=True)
    back = bot.http.get("/slack/oauth_redirect", params={"code": code, "state": state},
                        headers={"Cookie": f"slack-app-oauth-state={state}"})  # fmt: skip
    assert back.headers["location"] == (
        "/dashboard/slack/install?failed=org_wide_install_use_slack_bot_token"
    )
    installs = METADATA.tables["slack_installations"]
    with bot.db.engine.connect() as conn:
        assert conn.execute(select(installs.c.id)).all() == []
