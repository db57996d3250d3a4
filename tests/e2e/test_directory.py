"""The whole service knows the workspace before the first alert (issue 27, item 1): users.list
read at start in the background, kept current by user_change and team_join events (signed
and delivered to /slack/events as Slack delivers them), users.lookupByEmail left for people
the directory does not hold."""

from __future__ import annotations

import copy
from typing import Any

from securitybot.demo.slack_event_bodies import team_join_body, user_change_body
from securitybot.store import slack_people
from tests.e2e.harness import Bot, ok_calls, wait_until


def _known(bot: Bot, key: str) -> dict[str, Any] | None:
    """The people table's entry for ``key`` (the service writes it behind, in batches)."""
    with bot.db.read() as session:
        found = slack_people.user(session, key)
    return found[0] if found else None


def _dm(bot: Bot, alert_id: int, user_id: str) -> None:
    assert bot.wait_status(alert_id, "awaiting_ack")["user_id"] == user_id
    assert bot.row(alert_id).dm_channel == f"D{user_id}"


def test_people_come_from_the_directory_and_its_events(bot: Bot) -> None:
    wait_until(lambda: _known(bot, "alice@example.com"), what="the start-up sync")
    assert [c.status for c in bot.fs.calls_to("users.list")] == [200]
    assert _known(bot, "gone@example.com") == _known(bot, "UGONE")
    assert (_known(bot, "UGONE") or {}).get("deleted") is True

    alert = bot.post_alert(dedup_key="dir-alice")
    _dm(bot, alert["id"], "UALICE")
    # Deactivated, known as such: escalated as unknown, as before, without asking Slack.
    gone = bot.post_alert(dedup_key="dir-gone", user="gone@example.com")
    assert bot.wait_status(gone["id"], "escalated")["escalation_reason"] == "unknown_user"

    # Bob's address changes (user_change), Carol joins (team_join): both known at once.
    bob = copy.deepcopy(bot.fs.users["UBOB"])
    bob["profile"]["email"] = "robert@example.com"
    bot.fs.users["UBOB"] = bob
    assert bot.slack_post(user_change_body(bob)).status_code == 200
    carol = bot.fs.add_user("UCAROL", "carol@example.com", first_name="Carol")
    assert bot.slack_post(team_join_body(carol)).status_code == 200
    # The people table is written behind, off the event loop: give a loaded machine time.
    wait_until(lambda: _known(bot, "robert@example.com") and _known(bot, "carol@example.com"),
               timeout=30, what="the events in the people table")  # fmt: skip
    for user, user_id in (("robert@example.com", "UBOB"), ("carol@example.com", "UCAROL")):
        _dm(bot, bot.post_alert(dedup_key=f"dir-{user_id}", user=user)["id"], user_id)

    # Alice is deactivated (user_change, deleted: true): her next alert escalates.
    alice = copy.deepcopy(bot.fs.users["UALICE"]) | {"deleted": True}
    assert bot.slack_post(user_change_body(alice)).status_code == 200
    wait_until(lambda: (_known(bot, "UALICE") or {}).get("deleted"), what="Alice deactivated")
    later = bot.post_alert(dedup_key="dir-alice-gone", title="another one")
    assert bot.wait_status(later["id"], "escalated")["escalation_reason"] == "unknown_user"

    # Nobody was looked up one by one, and every DM was one call. Only Carol's language was
    # asked for (users.info include_locale, docs/i18n.md): team_join's user object has none,
    # while the directory's members came with theirs.
    assert not bot.fs.calls_to("users.lookupByEmail")
    assert [c.params["user"] for c in bot.fs.calls_to("users.info")] == ["UCAROL"]
    assert not bot.fs.calls_to("conversations.open")
    assert len(ok_calls(bot.fs, "chat.postMessage", "DUALICE")) == 1


def test_someone_new_since_the_sync_is_looked_up_by_email(bot: Bot) -> None:
    wait_until(lambda: _known(bot, "alice@example.com"), what="the start-up sync")
    bot.fs.add_user("UDAVE", "dave@example.com", first_name="Dave")  # no event reached us
    _dm(bot, bot.post_alert(dedup_key="dir-dave", user="dave@example.com")["id"], "UDAVE")
    assert [c.params["email"] for c in bot.fs.calls_to("users.lookupByEmail")] == [
        "dave@example.com"
    ]
