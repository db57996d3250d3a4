"""Several workspaces installed through OAuth when something fails: the start-up auth.test,
one installed workspace's token, the database write after a token refresh.

Fixtures and steps are test_oauth_workspaces.py's (Blue and Green install through the
dashboard); the fake answers errors with Slack's documented payloads, e.g. auth.test's
``{"ok": false, "error": "internal_error"}`` (docs.slack.dev/reference/methods/auth.test,
"Errors")."""

from __future__ import annotations

from securitybot.demo import FakeSlack
from securitybot.demo.slack_signing import app_uninstalled_body, slash_command_body
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import wait_until
from tests.e2e.test_oauth_workspaces import (
    BLUE,
    GREEN,
    auth,
    fs,
    install,
    oauth_config,
    sign_in,
    token_of,
)

__all__ = ["fs"]  # the fixture, used by name


def test_a_strangers_uninstall_while_our_team_is_unknown_teaches_the_guard_nothing(
    fs: FakeSlack, make_bot: MakeBot
) -> None:
    """slack.team_ids unset and the start-up auth.test failed: the served list is learnt from
    slack.bot_token's own auth.test, never from the team a request names (Bolt names the
    sender's for app_uninstalled, and anyone may install a distributed app)."""
    fs.fail_next("auth.test", error="internal_error")
    bot = make_bot(**oauth_config(fs))
    wait_until(lambda: [c for c in fs.calls_to("auth.test") if not c.response.get("ok")], 10,
               "the start-up check failing")  # fmt: skip
    # Revocations always reach Bolt's listeners (they delete only T9's own installation).
    assert bot.slack_post(app_uninstalled_body("T9")).status_code == 200
    stranger = bot.slack_post(slash_command_body(user="UX", text="status", team="T9"))
    assert stranger.status_code == 403, stranger.text
    home = bot.slack_post(slash_command_body(user="UALICE", text="status"))
    assert home.status_code == 200, home.text


def test_a_workspace_whose_token_was_revoked_does_not_stop_lookups_in_the_next(
    fs: FakeSlack, make_bot: MakeBot
) -> None:
    """Blue's token is revoked (Slack answers ``token_revoked``) and its app_uninstalled has
    not reached us: Dave, in Green (installed after Blue), is still found and asked."""
    bot = make_bot(**oauth_config(fs))
    sign_in(bot)
    install(bot, BLUE, "Blue Co", "UBOB")
    install(bot, GREEN, "Green Co", "UCAROL")
    # Dave joined Green since the start-up sync (which read the home workspace only).
    fs.add_user("UDAVE", "dave@example.com", real_name="Dave", teams=[GREEN])
    fs.revoke_workspace(BLUE)
    dave = bot.post_alert(dedup_key="green-dave", user="dave@example.com")
    asked = bot.wait_status(dave["id"], "awaiting_ack")
    assert asked["user_id"] == "UDAVE"
    [dm] = bot.dms("UDAVE")
    assert auth(dm) == f"Bearer {token_of(bot, GREEN)}"
    looked = [c.response.get("error") for c in fs.calls_to("users.lookupByEmail")]
    assert looked == ["users_not_found", "token_revoked", None]
