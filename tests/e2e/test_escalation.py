"""Escalation and triage end to end: the team's channel, responders, snoozes, exemptions.
Every story runs against both second factors (Duo, Okta Verify)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from securitybot.demo import FakeSlack, view_submission_body
from securitybot.demo.slack_interaction_bodies import block_action_body
from securitybot.slack.messages import (
    BENIGN_ACTION,
    BENIGN_MODAL,
    CLAIM_ACTION,
    COMPROMISE_ACTION,
    CONFIRM_ACTION,
    DENY_ACTION,
    SNOOZE_HOUR_ACTION,
)
from securitybot.slack.triage import NOTE_ACTION, NOTE_BLOCK
from tests.e2e.conftest import MakeBot
from tests.e2e.harness import SECURITY_CHANNEL, TOKEN, VERIFIERS, Bot, ok_calls, wait_until

pytestmark = pytest.mark.parametrize("verifier", VERIFIERS, indirect=True)

LEAD = "USECLEAD"
ADMIN_TOKEN = "e2e-team-admin-token-0123456789"
TEAM = {
    "escalation": {"responders": [LEAD, "S0SECTEAM"], "mention": "S0ONCALL"},
    # Exemptions and snoozes over the API need an admin credential, not the ingest token.
    "ingest": {
        "tokens": [
            {"source": "e2e", "token": TOKEN},
            {"source": "secops", "token": ADMIN_TOKEN, "scopes": ["admin"]},
        ]
    },
}


@pytest.fixture
def team_fs(fs: FakeSlack) -> FakeSlack:
    fs.add_user(LEAD, "lead@example.com", real_name="Sam Lead", first_name="Sam")
    fs.add_user("UGROUPIE", "groupie@example.com", first_name="Gru")
    fs.add_usergroup("S0SECTEAM", ["UGROUPIE"])
    return fs


def triage_click(bot: Bot, user: str, action: str, alert_id: int) -> None:
    body = block_action_body(
        user=user,
        action_id=action,
        value=str(alert_id),
        channel=SECURITY_CHANNEL,
        message_ts="1.0",
        response_url=bot.fs.response_url(),
    )
    assert bot.slack_post(body).status_code == 200


def escalate_by_denial(bot: Bot, **fields: Any) -> int:
    alert = bot.post_alert(**fields)
    bot.wait_status(alert["id"], "awaiting_ack")
    bot.click("UALICE", DENY_ACTION, alert["id"])
    bot.wait_status(alert["id"], "escalated")
    return int(alert["id"])


def test_the_escalation_post_carries_reason_timeline_and_mention(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    alert_id = escalate_by_denial(bot)
    post = bot.wait_security_post()
    blocks = json.dumps(post.params["blocks"])
    assert "not_me" in blocks and "<!subteam^S0ONCALL>" in blocks  # high severity pages
    assert "Alert ingested" in blocks and "DM sent to the user" in blocks
    assert "User said it was *not* them" in blocks
    assert CLAIM_ACTION in blocks and COMPROMISE_ACTION in blocks
    wait_until(lambda: bot.row(alert_id).escalation_ts, 10, "escalation ts stored")


def test_a_responder_claims_then_resolves_as_benign_through_the_modal(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    alert_id = escalate_by_denial(bot)
    bot.wait_security_post()
    triage_click(bot, LEAD, CLAIM_ACTION, alert_id)
    claimed = bot.wait_status(alert_id, "triaging")
    assert claimed["claimed_by"] == LEAD
    # The channel message is updated in place to show who is on it.
    wait_until(
        lambda: [
            c
            for c in ok_calls(bot.fs, "chat.update", SECURITY_CHANNEL)
            if "Being triaged by" in json.dumps(c.params["blocks"])
        ],
        10,
        "update",
    )

    triage_click(bot, LEAD, BENIGN_ACTION, alert_id)
    view = wait_until(lambda: bot.fs.calls_to("views.open"), 10, "modal")[0]
    assert view.params["view"]["callback_id"] == BENIGN_MODAL
    body = view_submission_body(
        user=LEAD,
        callback_id=BENIGN_MODAL,
        private_metadata=str(alert_id),
        values={
            NOTE_BLOCK: {NOTE_ACTION: {"type": "plain_text_input", "value": "Quarterly export"}}
        },
    )
    assert bot.slack_post(body).status_code == 200
    closed = bot.wait_status(alert_id, "closed")
    assert closed["outcome"] == "benign"
    assert bot.audit(alert_id, "alert.resolved_benign")[0].details["comment"] == "Quarterly export"


def test_confirming_compromise_resets_the_users_sessions_and_audits_it(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    alert_id = escalate_by_denial(bot)
    triage_click(bot, "UGROUPIE", COMPROMISE_ACTION, alert_id)  # member via the user group
    closed = bot.wait_status(alert_id, "closed")
    assert closed["outcome"] == "compromised"
    wait_until(lambda: bot.fs.session_resets, 10, "session reset")
    assert bot.fs.session_resets == ["UALICE"]
    wait_until(lambda: bot.audit(alert_id, "user.sessions_reset"), 10, "reset audit")


def test_someone_outside_the_team_cannot_triage(team_fs: FakeSlack, make_bot: MakeBot) -> None:
    bot = make_bot(**TEAM)
    alert_id = escalate_by_denial(bot)
    triage_click(bot, "UMALLORY", COMPROMISE_ACTION, alert_id)
    wait_until(lambda: bot.audit(alert_id, "triage.refused"), 10, "refusal audit")
    assert bot.alert(alert_id)["status"] == "escalated"
    assert bot.fs.session_resets == []
    # The refusal is audited before Mallory is told: wait for the telling, under load too.
    wait_until(
        lambda: any(c.params.get("user") == "UMALLORY"
                    for c in bot.fs.calls_to("chat.postEphemeral")),
        10, "Mallory told she may not triage",
    )  # fmt: skip


def test_always_escalate_kinds_still_ask_and_escalate_after_approval(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    alert = bot.post_alert(
        kind="ssh_key_added", details={"host": "bastion", "fingerprint": "SHA256:x"}
    )
    bot.wait_status(alert["id"], "awaiting_ack")
    bot.click("UALICE", CONFIRM_ACTION, alert["id"])
    push = bot.fd.wait_for_push(timeout=10)
    bot.fd.answer_push(push.txid, "allow")
    done = bot.wait_status(alert["id"], "escalated")
    assert done["escalation_reason"] == "always_escalate"
    assert done["user_answer"] == "confirmed" and done["duo_result"] == "duo_approved"
    assert f"{bot.provider} push *approved*" in json.dumps(
        bot.wait_security_post().params["blocks"]
    )


def test_a_confirmed_user_can_snooze_the_same_kind_and_scope(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    first = bot.post_alert(dedup_key="s1")
    bot.wait_status(first["id"], "awaiting_ack")
    bot.click("UALICE", CONFIRM_ACTION, first["id"])
    bot.fd.answer_push(bot.fd.wait_for_push(timeout=10).txid, "allow")
    bot.wait_status(first["id"], "resolved")
    bot.click("UMALLORY", SNOOZE_HOUR_ACTION, first["id"])  # refused: not her alert
    bot.click("UALICE", SNOOZE_HOUR_ACTION, first["id"])
    listed = wait_until(
        lambda: bot.http.get(
            "/api/v1/snoozes", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ).json()["snoozes"],
        10,
        "snooze",
    )
    assert len(listed) == 1 and listed[0]["user_id"] == "UALICE"

    same = bot.post_alert(dedup_key="s2")
    suppressed = bot.wait_status(same["id"], "resolved")
    assert suppressed["outcome"] == "suppressed"
    other_host = bot.post_alert(
        dedup_key="s3", details={"host": "elsewhere", "command": "flurb -export"}
    )
    bot.wait_status(other_host["id"], "awaiting_ack")  # different scope: asked as usual

    resp = bot.http.delete(
        f"/api/v1/snoozes/{listed[0]['id']}?requested_by={LEAD}",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert resp.status_code == 204
    again = bot.post_alert(dedup_key="s4")
    bot.wait_status(again["id"], "awaiting_ack")
    assert bot.audit(same["id"], "alert.snooze_matched")


def test_exempt_users_go_straight_to_the_team_and_nobody_exempts_themselves(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    self_exempt = bot.http.post(
        "/api/v1/exemptions",
        headers=auth,
        json={"user": "lead@example.com", "reason": "me", "requested_by": LEAD},
    )
    assert self_exempt.status_code == 403
    not_team = bot.http.post(
        "/api/v1/exemptions",
        headers=auth,
        json={"user": "bob@example.com", "reason": "x", "requested_by": "UMALLORY"},
    )
    assert not_team.status_code == 403
    created = bot.http.post(
        "/api/v1/exemptions",
        headers=auth,
        json={"user": "bob@example.com", "reason": "on leave", "requested_by": LEAD},
    )
    assert created.status_code == 201, created.text
    assert [
        e["user"] for e in bot.http.get("/api/v1/exemptions", headers=auth).json()["exemptions"]
    ] == ["bob@example.com"]

    alert = bot.post_alert(user="bob@example.com")
    escalated = bot.wait_status(alert["id"], "escalated")
    assert escalated["escalation_reason"] == "user_exempt"
    assert bot.dms("UBOB") == []
    deleted = bot.http.delete(
        f"/api/v1/exemptions/{created.json()['id']}?requested_by={LEAD}", headers=auth
    )
    assert deleted.status_code == 204


def test_one_reminder_halfway_to_the_deadline(team_fs: FakeSlack, make_bot: MakeBot) -> None:
    bot = make_bot(policy={"ack_timeout": 2})
    alert = bot.post_alert(kind="default")
    bot.wait_status(alert["id"], "escalated", timeout=15)
    reminders = [c for c in bot.replies("UALICE") if "Reminder" in c.params["text"]]
    assert len(reminders) == 1
    assert len(bot.audit(alert["id"], "alert.reminder_sent")) == 1


def test_unclaimed_escalations_page_the_next_tier(team_fs: FakeSlack, make_bot: MakeBot) -> None:
    bot = make_bot(
        escalation={
            "responders": [LEAD],
            "claim_timeout": 1,
            "tiers": [{"mention": "S0TIER2"}, {"mention": "USECLEAD"}],
        }
    )
    alert_id = escalate_by_denial(bot)
    posts = wait_until(lambda: (p := bot.security_posts()) and len(p) >= 3 and p, 15, "tiers")
    assert "<!subteam^S0TIER2>" in json.dumps(posts[1].params["blocks"])
    assert "<@USECLEAD>" in json.dumps(posts[2].params["blocks"])
    assert [a.details["tier"] for a in bot.audit(alert_id, "escalation.tier_raised")] == [1, 2]


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        _Receiver.received.append(json.loads(self.rfile.read(length)))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_when_slack_keeps_failing_the_escalation_goes_to_the_fallback_webhook(
    team_fs: FakeSlack, make_bot: MakeBot, receiver: str
) -> None:
    bot = make_bot(
        escalation={
            "responders": [LEAD],
            "fallback_webhook": receiver,
            "fallback_after_failures": 2,
        }
    )
    alert = bot.post_alert()
    bot.wait_status(alert["id"], "awaiting_ack")
    bot.fs.fail_next("chat.postMessage", status=500, times=3)
    bot.click("UALICE", DENY_ACTION, alert["id"])
    wait_until(lambda: _Receiver.received, 20, "fallback webhook")
    assert _Receiver.received[0]["alert_id"] == alert["id"]
    assert _Receiver.received[0]["reason"] == "not_me"
    bot.wait_security_post(timeout=20)  # Slack recovers: the post still lands
    assert len(_Receiver.received) == 1


def test_a_burst_for_one_user_and_kind_is_one_conversation_and_one_escalation(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    ids = [bot.post_alert(dedup_key=f"burst-{i}", title=f"flurb run {i}")["id"] for i in range(3)]
    parent = ids[0]
    for alert_id in ids:
        bot.wait_status(alert_id, "awaiting_ack")
    assert len(bot.dms("UALICE")) == 1
    # The one DM names all three (directly, or re-rendered in place when late joiners arrive).
    wait_until(
        lambda: any(
            "3 alerts" in json.dumps(c.params.get("blocks"))
            for c in [*bot.dms("UALICE"), *ok_calls(bot.fs, "chat.update", "DUALICE")]
        ),
        10,
        "grouped DM",
    )
    bot.say("UALICE", "no that was not me")
    wait_until(lambda: bot.replies("UALICE"), 10, "are you sure?")  # a typed no is confirmed
    bot.say("UALICE", "confirm")
    for alert_id in ids:
        escalated = bot.wait_status(alert_id, "escalated")
        assert escalated["escalation_reason"] == "not_me"
    post = bot.wait_security_post()
    assert "3 alerts in this burst" in json.dumps(post.params["blocks"])
    wait_until(lambda: bot.audit(parent, "alert.user_denied"), 5, "audit")
    assert len(bot.security_posts()) == 1
    assert [r.details["grouped_under"] for r in bot.audit(ids[2], "alert.user_denied")] == [parent]


def test_a_responder_cannot_triage_an_alert_about_themselves(
    team_fs: FakeSlack, make_bot: MakeBot
) -> None:
    bot = make_bot(**TEAM)
    alert = bot.post_alert(user="lead@example.com")
    bot.wait_status(alert["id"], "awaiting_ack")
    bot.click(LEAD, DENY_ACTION, alert["id"])
    alert_id = int(bot.wait_status(alert["id"], "escalated")["id"])
    bot.wait_security_post()

    for action in (CLAIM_ACTION, BENIGN_ACTION, COMPROMISE_ACTION):
        triage_click(bot, LEAD, action, alert_id)
    # A modal opened some other way (or forged) is refused too, inside the modal.
    body = view_submission_body(
        user=LEAD,
        callback_id=BENIGN_MODAL,
        private_metadata=str(alert_id),
        values={NOTE_BLOCK: {NOTE_ACTION: {"type": "plain_text_input", "value": "fine"}}},
    )
    resp = bot.slack_post(body)
    assert resp.status_code == 200
    assert resp.json()["response_action"] == "errors"
    assert "about yourself" in resp.json()["errors"][NOTE_BLOCK]

    refusals = wait_until(
        lambda: (r := bot.audit(alert_id, "triage.refused")) and len(r) >= 4 and r, 10, "audit"
    )
    assert {r.actor for r in refusals} == {LEAD}
    assert {r.details["reason"] for r in refusals} == {"self"}
    assert {r.details["action"] for r in refusals} == {
        "claim", "resolve_benign", "confirm_compromise"
    }  # fmt: skip
    # Each refusal is audited before its ephemeral note is posted: wait for the notes too.
    notes = wait_until(
        lambda: len(n := [c for c in bot.fs.calls_to("chat.postEphemeral")
                          if c.params.get("user") == LEAD]) >= 3 and n,
        10, "the three refusal notes",
    )  # fmt: skip
    assert len(notes) == 3 and all("about yourself" in c.params["text"] for c in notes)
    assert bot.fs.calls_to("views.open") == []
    assert bot.alert(alert_id)["status"] == "escalated"
    assert bot.fs.session_resets == []

    # Another responder can still triage it.
    triage_click(bot, "UGROUPIE", CLAIM_ACTION, alert_id)
    assert bot.wait_status(alert_id, "triaging")["claimed_by"] == "UGROUPIE"
