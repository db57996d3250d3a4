"""The reset budget end to end: past ``aer.reset_budget`` automatic resets are held, shown in
one security-channel message updated in place, and released or discarded by a responder."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select

from securitybot.demo import FakeSlack
from securitybot.demo.slack_interaction_bodies import block_action_body
from securitybot.store.models import AuditLog
from tests.aer_e2e.conftest import QUIET, TOR_IP, MakeBot, get, post_events
from tests.e2e.harness import SECURITY_CHANNEL, Bot, ok_calls, wait_until

LEAD, DEPUTY, MALLORY = "ULEAD", "UDEPUTY", "UMALLORY"
VICTIMS = [f"UVICTIM{i}" for i in range(1, 7)]
TEAM = {"escalation": {"responders": [LEAD, DEPUTY]}}
BUDGET_3 = {"count": 3, "per": "1h"}
# The buttons' action ids (public: Slack sends them back), spelled out so that this file runs,
# and fails on its assertions, against a version without the budget.
RELEASE_ACTION, DISCARD_ACTION = "aer_held_release", "aer_held_discard"


@pytest.fixture
def team(fs: FakeSlack) -> FakeSlack:
    for uid in (LEAD, DEPUTY, MALLORY, *VICTIMS):
        fs.add_user(uid, f"{uid.lower()}@example.com", real_name=uid.title())
    return fs


def tor_sign_ins(users: list[str]) -> list[dict[str, Any]]:
    return [{"org": QUIET, "user": u, "action": "login", "ip": TOR_IP, "session": f"S{u}"}
            for u in users]  # fmt: skip


def held_posts(fs: FakeSlack) -> list[Any]:
    return [c for c in ok_calls(fs, "chat.postMessage", SECURITY_CHANNEL)
            if "reset budget" in c.params["text"]]  # fmt: skip


def current(fs: FakeSlack) -> dict[str, Any]:
    """The held-resets message as the channel shows it now (after any updates)."""
    msgs = [m for m in fs.messages(SECURITY_CHANNEL) if "reset budget" in m["text"]]
    assert len(msgs) == 1, msgs
    return msgs[0]


def buttons(message: dict[str, Any]) -> dict[str, str]:
    blocks = message["blocks"]
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return {e["action_id"]: e["value"] for b in blocks if b["type"] == "actions"
            for e in b["elements"]}  # fmt: skip


def click(bot: Bot, user: str, action: str, value: str) -> None:
    body = block_action_body(user=user, action_id=action, value=value, channel=SECURITY_CHANNEL,
                             message_ts="1.0", response_url=bot.fs.response_url())  # fmt: skip
    assert bot.slack_post(body).status_code == 200


def audits(bot: Bot, action: str) -> list[AuditLog]:
    with bot.db.read() as session:
        q = select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
        return list(session.scalars(q))


def hold_two(bot: Bot, fs: FakeSlack) -> dict[str, Any]:
    """Five Tor sign-ins in one request against a budget of 3: the held-resets message."""
    out = post_events(bot, tor_sign_ins(VICTIMS[:5]))
    assert out["decisions"] == {"reset": 3, "held": 2}
    wait_until(lambda: len(fs.session_resets) == 3, what="three resets")
    wait_until(lambda: held_posts(fs), what="the held-resets escalation")
    return current(fs)


def test_five_tor_sign_ins_past_a_budget_of_three_reset_three_and_hold_two(
    make_bot: MakeBot, team: FakeSlack
) -> None:
    bot = make_bot(TEAM, reset_budget=BUDGET_3)
    message = hold_two(bot, team)
    assert sorted(team.session_resets) == VICTIMS[:3]  # in order: the first three spend it
    assert "2 automatic session resets held" in message["text"]
    assert "<@UVICTIM4>" in json.dumps(message["blocks"]) and "UVICTIM5" in json.dumps(
        message["blocks"]
    )
    assert set(buttons(message)) == {RELEASE_ACTION, DISCARD_ACTION}
    verdicts = sorted(
        (a["user"], a["decision"]["verdict"], a["response"])
        for a in get(bot, "/api/v1/anomalies", org=QUIET)["anomalies"]
    )
    assert [(u, v) for u, v, _ in verdicts] == [
        ("UVICTIM1", "reset"), ("UVICTIM2", "reset"), ("UVICTIM3", "reset"),
        ("UVICTIM4", "held"), ("UVICTIM5", "held"),
    ]  # fmt: skip
    assert {r for u, v, r in verdicts if v == "held"} == {"held"}

    # One more, in another request: the same message says 3, updated in place.
    assert post_events(bot, tor_sign_ins(VICTIMS[5:]))["decisions"] == {"held": 1}
    wait_until(lambda: "3 automatic session resets held" in current(team)["text"],
               what="the message updated to 3")  # fmt: skip
    assert len(held_posts(team)) == 1
    assert ok_calls(team, "chat.update", SECURITY_CHANNEL)
    assert sorted(team.session_resets) == VICTIMS[:3]


def test_release_resets_each_held_user_once_even_clicked_twice_on_two_replicas(
    make_bot: MakeBot, team: FakeSlack
) -> None:
    bot = make_bot(TEAM, reset_budget=BUDGET_3)
    replica = make_bot(TEAM, reset_budget=BUDGET_3)
    value = buttons(hold_two(bot, team))[RELEASE_ACTION]
    with ThreadPoolExecutor(4) as pool:
        clicks = [
            pool.submit(click, b, who, RELEASE_ACTION, value)
            for b, who in ((bot, LEAD), (replica, LEAD), (bot, DEPUTY), (replica, DEPUTY))
        ]
        for c in clicks:
            c.result()
    wait_until(lambda: len(team.session_resets) == 5, what="the two held resets")
    wait_until(lambda: "released" in current(team)["text"], what="the message updated")
    assert sorted(team.session_resets) == VICTIMS[:5]
    released = audits(bot, "aer.held_resets_released")
    assert len(released) == 1 and released[0].actor in (LEAD, DEPUTY)
    assert released[0].details["users"] == VICTIMS[3:5]
    assert buttons(current(team)) == {}
    # The released resets are audited and the users told, like any automatic reset.
    resets = wait_until(
        lambda: len(r := audits(bot, "user_sessions_reset_by_anomaly_event_response")) == 5 and r,
        what="five reset audit records",
    )
    assert sorted(r.subject_user for r in resets) == VICTIMS[:5]
    assert len(team.session_resets) == 5  # nothing more happened meanwhile


def test_discard_resets_nobody(make_bot: MakeBot, team: FakeSlack) -> None:
    bot = make_bot(TEAM, reset_budget=BUDGET_3)
    value = buttons(hold_two(bot, team))[DISCARD_ACTION]
    click(bot, LEAD, DISCARD_ACTION, value)
    wait_until(lambda: "discarded" in current(team)["text"], what="the message updated")
    click(bot, DEPUTY, RELEASE_ACTION, value)  # too late: decided
    wait_until(lambda: ok_calls(team, "chat.postEphemeral"), what="the 'already' note")
    assert "already discarded" in ok_calls(team, "chat.postEphemeral")[-1].params["text"]
    assert sorted(team.session_resets) == VICTIMS[:3]
    (discarded,) = audits(bot, "aer.held_resets_discarded")
    assert (discarded.actor, discarded.details["users"]) == (LEAD, VICTIMS[3:5])
    anomalies = get(bot, "/api/v1/anomalies", org=QUIET, verdict="held")["anomalies"]
    assert {a["response"] for a in anomalies} == {"discarded"}


def test_a_non_responder_click_is_refused_and_audited(make_bot: MakeBot, team: FakeSlack) -> None:
    bot = make_bot(TEAM, reset_budget=BUDGET_3)
    value = buttons(hold_two(bot, team))[RELEASE_ACTION]
    click(bot, MALLORY, RELEASE_ACTION, value)
    click(bot, MALLORY, DISCARD_ACTION, value)
    wait_until(lambda: len(ok_calls(team, "chat.postEphemeral")) == 2, what="two refusals")
    assert all("Only the security team" in c.params["text"]
               for c in ok_calls(team, "chat.postEphemeral"))  # fmt: skip
    refused = audits(bot, "triage.refused")  # Bolt runs the two clicks side by side
    assert sorted((r.actor, r.details["reason"], r.details["action"]) for r in refused) == [
        (MALLORY, "not a responder", "discard_held_resets"),
        (MALLORY, "not a responder", "release_held_resets"),
    ]
    assert sorted(team.session_resets) == VICTIMS[:3]
    assert buttons(current(team))  # still open
    assert audits(bot, "aer.held_resets_released") == []


def test_a_responder_cannot_release_or_discard_their_own_held_reset(
    make_bot: MakeBot, team: FakeSlack
) -> None:
    bot = make_bot({"escalation": {"responders": [LEAD, "UVICTIM5"]}}, reset_budget=BUDGET_3)
    value = buttons(hold_two(bot, team))[DISCARD_ACTION]
    click(bot, "UVICTIM5", DISCARD_ACTION, value)
    wait_until(lambda: ok_calls(team, "chat.postEphemeral"), what="the refusal")
    assert "your own account" in ok_calls(team, "chat.postEphemeral")[0].params["text"]
    assert [r.details["reason"] for r in audits(bot, "triage.refused")] == ["self"]
    assert audits(bot, "aer.held_resets_discarded") == []
    assert buttons(current(team))


def test_a_click_decides_only_on_the_count_it_showed(make_bot: MakeBot, team: FakeSlack) -> None:
    bot = make_bot(TEAM, reset_budget=BUDGET_3)
    stale = buttons(hold_two(bot, team))[RELEASE_ACTION]
    post_events(bot, tor_sign_ins(VICTIMS[5:]))  # a third is held after the message was drawn
    click(bot, LEAD, RELEASE_ACTION, stale)
    wait_until(lambda: ok_calls(team, "chat.postEphemeral"), what="the note")
    assert (
        "3 resets are held now, not the 2" in ok_calls(team, "chat.postEphemeral")[0].params["text"]
    )
    assert sorted(team.session_resets) == VICTIMS[:3]
    fresh = wait_until(
        lambda: (v := buttons(current(team)).get(RELEASE_ACTION)) != stale and v,
        what="the redrawn button",
    )
    click(bot, LEAD, RELEASE_ACTION, fresh)
    wait_until(lambda: len(team.session_resets) == 6, what="all three held resets")
