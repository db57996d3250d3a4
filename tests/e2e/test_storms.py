"""The storm guard end to end (issue 27.4): one detection past ``storm.max_people`` holds the
rest of its DMs, posts one message to the security channel (updated, never reposted, as more
join), and only a responder's Release, Discard or Escalate all moves the held alerts on."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select

from securitybot.demo import FakeSlack
from securitybot.demo.slack_interaction_bodies import block_action_body
from securitybot.store.models import AuditLog
from securitybot.store.storm_models import Storm
from securitybot.storms.message import DISCARD_ACTION, ESCALATE_ACTION, RELEASE_ACTION
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import SECURITY_CHANNEL, Bot, ok_calls, wait_until

LEAD = "ULEAD"
PEOPLE = 6
LIMIT = 3
STORM = {"max_people": LIMIT, "window": "10m"}
TEAM = {"responders": [LEAD]}


@pytest.fixture
def storm_fs(fs: FakeSlack) -> FakeSlack:
    fs.add_user(LEAD, "lead@example.com", real_name="Sam Lead", first_name="Sam")
    for i in range(PEOPLE + 2):
        fs.add_user(f"UPERSON{i}", f"person{i}@example.com", first_name=f"P{i}")
    return fs


def _fire(bot: Bot, people: range, **fields: Any) -> list[int]:
    """One detection (same kind and source) for each person, one after another."""
    ids = []
    for i in people:
        alert = bot.post_alert(user=f"person{i}@example.com", title=f"mass download {i}", **fields)
        ids.append(int(alert["id"]))
    return ids


def _settled(bot: Bot, ids: list[int]) -> dict[int, str]:
    return {i: bot.wait_status(i, "awaiting_ack", "held")["status"] for i in ids}


def _storm(bot: Bot) -> Storm:
    with bot.db.read() as session:
        storms = list(session.scalars(select(Storm).order_by(Storm.id)))
        assert len(storms) == 1, storms
        session.expunge(storms[0])
        return storms[0]


def _dmed(bot: Bot) -> set[str]:
    # A DM is posted to the user id; Slack answers with the DM's id.
    return {c.response["channel"] for c in ok_calls(bot.fs, "chat.postMessage")
            if c.response["channel"].startswith("DUPERSON") and c.params.get("blocks")}  # fmt: skip


def _click(bot: Bot, user: str, action: str, storm: Storm) -> None:
    body = block_action_body(user=user, action_id=action, value=f"{storm.id}:{storm.held}",
                             channel=SECURITY_CHANNEL, message_ts=storm.ts or "1.0",
                             response_url=bot.fs.response_url())  # fmt: skip
    assert bot.slack_post(body).status_code == 200


def _held_storm(bot: Bot) -> tuple[list[int], list[int], Storm]:
    ids = _fire(bot, range(PEOPLE))
    status = _settled(bot, ids)
    dmed = [i for i in ids if status[i] == "awaiting_ack"]
    held = [i for i in ids if status[i] == "held"]
    assert len(dmed) == LIMIT and len(held) == PEOPLE - LIMIT
    storm = wait_until(lambda: (s := _storm(bot)).ts and s.shown_version >= s.version and s,
                       what="the storm message posted")  # fmt: skip
    return dmed, held, storm


def test_past_the_limit_dms_are_held_with_one_message(
    storm_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(storm=STORM, escalation=TEAM)
    dmed, held, storm = _held_storm(bot)
    assert _dmed(bot) == {f"D{bot.row(i).user_id}" for i in dmed}
    for i in held:
        a = bot.alert(i)
        assert (a["status"], a["escalation_reason"]) == ("held", "storm")
        assert bot.audit(i, "alert.storm_held")
    assert (storm.kind, storm.source, storm.held, storm.people) == (
        "sensitive_command", "e2e", PEOPLE - LIMIT, LIMIT,
    )  # fmt: skip
    posts = bot.security_posts()
    assert len(posts) == 1
    # the post, or its last update if alerts joined while it was on its way
    shown = [posts[0], *ok_calls(bot.fs, "chat.update", SECURITY_CHANNEL)][-1]
    text = str(shown.params["blocks"])
    assert "6 people so far" in text and "sensitive_command" in text
    actions = [e["action_id"] for b in posts[0].params["blocks"] if b["type"] == "actions"
               for e in b["elements"]]  # fmt: skip
    assert actions == [RELEASE_ACTION, DISCARD_ACTION, ESCALATE_ACTION]
    listed = bot.http.get(
        "/api/v1/alerts?status=held",
        headers={"Authorization": "Bearer e2e-ingest-token-0123456789"},
    )
    assert sorted(a["id"] for a in listed.json()["alerts"]) == sorted(held)


def test_late_arrivals_join_and_the_message_is_updated_not_reposted(
    storm_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(storm=STORM, escalation=TEAM)
    _, _, storm = _held_storm(bot)
    late = _fire(bot, range(PEOPLE, PEOPLE + 2))
    assert set(_settled(bot, late).values()) == {"held"}
    updated = wait_until(
        lambda: [c for c in ok_calls(bot.fs, "chat.update", SECURITY_CHANNEL)
                 if "8 people so far" in str(c.params.get("blocks"))],
        what="the storm message updated",
    )  # fmt: skip
    assert updated[-1].params["ts"] == storm.ts
    assert len(bot.security_posts()) == 1
    assert _storm(bot).held == PEOPLE - LIMIT + 2


def test_release_dms_every_held_person(storm_fs: FakeSlack, make_bot: MakeBot) -> None:
    bot = make_bot(storm=STORM, escalation=TEAM)
    _, held, storm = _held_storm(bot)
    _click(bot, LEAD, RELEASE_ACTION, storm)
    for i in held:
        bot.wait_status(i, "awaiting_ack")
    wait_until(lambda: len(_dmed(bot)) == PEOPLE, what="every person DMed")
    assert _storm(bot).status == "released"
    with bot.db.read() as session:
        row = session.scalars(select(AuditLog).where(AuditLog.action == "storm.released")).one()
    assert row.actor == LEAD and row.details["alerts"] == len(held)


def test_discard_closes_them_and_nobody_is_asked(storm_fs: FakeSlack, make_bot: MakeBot) -> None:
    bot = make_bot(storm=STORM, escalation=TEAM)
    _, held, storm = _held_storm(bot)
    _click(bot, LEAD, DISCARD_ACTION, storm)
    for i in held:
        a = bot.wait_status(i, "closed")
        assert a["outcome"] == "storm_discarded"
    assert len(_dmed(bot)) == LIMIT
    wait_until(
        lambda: [
            c
            for c in ok_calls(bot.fs, "chat.update", SECURITY_CHANNEL)
            if "discarded" in str(c.params.get("blocks"))
        ],
        what="message shows it",
    )


def test_escalate_all_is_one_escalation_for_the_group(
    storm_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(storm=STORM, escalation=TEAM)
    _, held, storm = _held_storm(bot)
    _click(bot, LEAD, ESCALATE_ACTION, storm)
    for i in held:
        a = bot.wait_status(i, "escalated")
        assert a["escalation_reason"] == "storm"
    storm = wait_until(lambda: (s := _storm(bot)).status == "escalated" and s, what="decided")
    assert storm.escalated_alert_id == held[0]
    # The storm message, then one escalation post (the group's), nothing per person.
    wait_until(lambda: len(bot.security_posts()) == 2, what="the group's escalation post")
    assert bot.row(held[1]).parent_id == held[0]
    assert len(_dmed(bot)) == LIMIT


def test_only_responders_decide(storm_fs: FakeSlack, make_bot: MakeBot) -> None:
    bot = make_bot(storm=STORM, escalation=TEAM)
    _, held, storm = _held_storm(bot)
    _click(bot, "UPERSON0", RELEASE_ACTION, storm)
    wait_until(lambda: bot.fs.calls_to("chat.postEphemeral"), what="the refusal")
    with bot.db.read() as session:
        refused = session.scalars(
            select(AuditLog).where(AuditLog.action == "triage.refused")
        ).one()  # fmt: skip
    assert refused.actor == "UPERSON0" and refused.details["storm"] == storm.id
    assert _storm(bot).status == "open"
    assert {bot.alert(i)["status"] for i in held} == {"held"}


def test_after_the_window_a_later_alert_starts_fresh(
    storm_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(storm={"max_people": LIMIT, "window": "2s"}, escalation=TEAM)
    _, _, storm = _held_storm(bot)
    time.sleep(2.2)  # the window passes with no new alert: the storm takes no more
    later = _fire(bot, range(PEOPLE, PEOPLE + 1))
    assert _settled(bot, later) == {later[0]: "awaiting_ack"}
    assert _storm(bot).held == storm.held
