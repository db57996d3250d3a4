"""Several workspaces installed through OAuth when something fails: the start-up auth.test,
one installed workspace's token, the database write after a token refresh.

Fixtures and steps are test_oauth_workspaces.py's (Blue and Green install through the
dashboard); the fake answers errors with Slack's documented payloads, e.g. auth.test's
``{"ok": false, "error": "internal_error"}`` (docs.slack.dev/reference/methods/auth.test,
"Errors")."""

from __future__ import annotations

import time

import pytest
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from securitybot.demo import FakeSlack
from securitybot.demo.slack_event_bodies import app_home_opened_body, app_uninstalled_body
from securitybot.demo.slack_interaction_bodies import slash_command_body
from securitybot.store.slack_installations import METADATA
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


def test_a_refreshed_token_the_database_failed_to_save_is_used_and_saved_later(
    fs: FakeSlack, make_bot: MakeBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Token rotation on: Slack spends Blue's refresh token, then the write of the new pair
    fails. The new token still sends Bob's DM, and the pair is saved once the database is
    back (else every later refresh answers invalid_refresh_token)."""
    fs.token_rotation = True
    fs.token_lifetime = 7201  # refreshed 2 h ahead: one second after it was issued
    bot = make_bot(**oauth_config(fs, refresh_before="2h"))
    sign_in(bot)
    install(bot, BLUE, "Blue Co", "UBOB")
    down = [True]
    save = SQLAlchemyInstallationStore.save_bot

    def save_bot(store: SQLAlchemyInstallationStore, bot: object) -> None:
        if down[0]:
            raise OperationalError("INSERT INTO slack_bots", {}, Exception("database is locked"))
        save(store, bot)  # type: ignore[arg-type]

    monkeypatch.setattr(SQLAlchemyInstallationStore, "save_bot", save_bot)
    time.sleep(1.5)
    fs.token_lifetime = 7500  # the refreshed token is not due again during the test
    bob = bot.post_alert(dedup_key="rotated-bob", user="bob@example.com")
    bot.wait_status(bob["id"], "awaiting_ack")
    [fresh] = [c.response for c in fs.calls_to("oauth.v2.access")
               if c.params.get("grant_type") == "refresh_token" and c.response["ok"]]  # fmt: skip
    [dm] = bot.dms("UBOB")
    assert auth(dm) == f"Bearer {fresh['access_token']}"
    down[0] = False
    # Bob opens the Home tab: Blue's token is needed again, and the kept pair is saved.
    assert bot.slack_post(app_home_opened_body("UBOB", team=BLUE)).status_code == 200
    bots = METADATA.tables["slack_bots"]

    def stored() -> str | None:
        with bot.db.engine.connect() as conn:
            row = conn.execute(select(bots.c.bot_refresh_token).where(bots.c.team_id == BLUE)
                               .order_by(bots.c.id.desc())).first()  # fmt: skip
        return None if row is None else str(row.bot_refresh_token)

    wait_until(lambda: stored() == fresh["refresh_token"], 10, "the new pair saved")
