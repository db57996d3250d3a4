"""The events endpoint and the responses it drives, through HTTP against the fake Slack."""

from __future__ import annotations

from sqlalchemy import select

from securitybot.demo import FakeSlack
from securitybot.store.aer_models import AerCounter
from tests.aer_e2e.conftest import (
    ADMIN_AUTH,
    AER_CHANNEL,
    EVENTS_AUTH,
    QUIET,
    TOR_IP,
    MakeBot,
    get,
    post_events,
)
from tests.e2e.harness import ok_calls, wait_until


def test_a_rejected_event_does_not_sink_the_batch_and_leaves_nothing_behind(
    make_bot: MakeBot,
) -> None:
    bot = make_bot()
    good = {"org": QUIET, "user": "UBOB", "action": "file_download", "count": 3}
    bad = {"org": QUIET, "user": "bob@example.com", "action": "file_download", "count": 9}
    out = post_events(bot, [good, bad, good])
    assert out["accepted"] == 2
    assert [(r["index"], r["field"]) for r in out["rejected"]] == [(1, "user")]
    assert "Slack user id" in out["rejected"][0]["error"]
    nd = post_events(bot, [good, {"org": QUIET}], ndjson=True)
    assert nd["accepted"] == 1 and nd["rejected"][0]["index"] == 1
    with bot.db.read() as session:
        rows = session.execute(select(AerCounter.user_id, AerCounter.count)).all()
    assert rows == [("UBOB", 9)]  # 3 + 3 + 3; nothing of the rejected event


def test_bad_requests_get_a_clear_4xx(make_bot: MakeBot) -> None:
    bot = make_bot()
    resp = bot.http.post("/api/v1/events", json=[])
    assert resp.status_code == 401
    resp = bot.http.post("/api/v1/events", content=b"{not json", headers=EVENTS_AUTH)
    assert resp.status_code == 400 and resp.json()["error"] == "bad_batch"
    resp = bot.http.post("/api/v1/events", json={"org": QUIET}, headers=EVENTS_AUTH)
    assert resp.status_code == 400 and "array" in resp.json()["message"]
    too_many = [{"org": QUIET, "user": "UBOB", "action": "search"}] * 10_001
    resp = bot.http.post("/api/v1/events", json=too_many, headers=EVENTS_AUTH)
    assert resp.status_code == 413 and "10,000" in resp.json()["message"]
    resp = bot.http.get("/api/v1/audit", params={"cursor": "nope"}, headers=ADMIN_AUTH)
    assert resp.status_code == 422


def test_cooldown_after_a_reset_notifies_instead_of_resetting_again(
    make_bot: MakeBot, fs: FakeSlack
) -> None:
    bot = make_bot()
    tor = {"org": QUIET, "user": "UALICE", "action": "login", "ip": TOR_IP}
    post_events(bot, [{**tor, "session": "S1"}])
    wait_until(lambda: fs.session_resets, what="the first reset")
    # No session id, so this cannot be called a new session (persistence): the cool-down holds.
    out = post_events(bot, [tor])
    assert out["decisions"] == {"cooldown": 1}
    verdicts = [a["decision"]["verdict"] for a in get(bot, "/api/v1/anomalies")["anomalies"]]
    assert verdicts == ["cooldown", "reset"]
    assert fs.session_resets == ["UALICE"]


def test_duplicate_notifications_become_one_message_updated_with_a_count(
    make_bot: MakeBot, fs: FakeSlack
) -> None:
    bot = make_bot()
    base = {"org": QUIET, "user": "UBOB", "action": "login", "country": "US"}
    events = [{**base, "asn": asn, "session": f"S{asn}"} for asn in (7922, 3320, 701, 812)]
    # Within one batch repeats are already counted before anything is posted.
    assert post_events(bot, events[:3])["decisions"] == {"notify": 2}
    wait_until(lambda: fs.messages(AER_CHANNEL), what="the first channel message")
    assert post_events(bot, events[3:])["decisions"] == {"notify": 1}
    msgs = wait_until(
        lambda: (m := fs.messages(AER_CHANNEL)) and "x3" in m[0]["text"] and m,
        what="the channel message updated to x3",
    )
    assert len(msgs) == 1 and "UBOB" in msgs[0]["text"]
    assert len(ok_calls(fs, "chat.postMessage", AER_CHANNEL)) == 1
    assert ok_calls(fs, "chat.update", AER_CHANNEL)
    # UOWNER is primary owner and security admin: one DM; USECADM one DM: 3 posts in all.
    wait_until(lambda: len(ok_calls(fs, "chat.postMessage")) == 3, what="three posts")
    assert sorted(c.response["channel"] for c in ok_calls(fs, "chat.postMessage")) == [
        AER_CHANNEL, "DUOWNER", "DUSECADM",
    ]  # fmt: skip


def test_ask_user_creates_a_normal_alert_for_the_user(make_bot: MakeBot, fs: FakeSlack) -> None:
    bot = make_bot(orgs={QUIET: {"responses": {"asn": "ask_user"}}})
    base = {"org": QUIET, "user": "UBOB", "action": "login", "country": "US"}
    post_events(bot, [{**base, "asn": 7922}, {**base, "asn": 3320, "session": "S2"}])
    dm = wait_until(lambda: bot.dms("UBOB"), what="the alert DM")
    alerts = get(bot, "/api/v1/alerts", kind="aer_anomaly")["alerts"]
    assert len(alerts) == 1 and alerts[0]["user"] == "UBOB"
    assert "asn" in dm[0].params["text"]
