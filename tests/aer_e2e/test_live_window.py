"""Issue 14 item 1: a two-week back-fill through HTTP trains AER and triggers nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from securitybot.demo import FakeSlack
from securitybot.store.aer_models import AerAnomaly, AerCounter
from securitybot.store.models import Outbox
from tests.aer_e2e.conftest import BUSY, QUIET, MakeBot, history, post_events


def test_two_weeks_of_back_fill_for_two_orgs_raise_no_anomaly_notification_or_reset(
    make_bot: MakeBot, fs: FakeSlack
) -> None:
    bot = make_bot()
    # About 400 downloads an hour per user in the busy org: far above the cold-start default of
    # 300, which is what produced thousands of anomalies when history was judged as live.
    busy = history(BUSY, range(350, 450), users=10)
    quiet = history(QUIET, range(1, 6), users=10)
    for org_events in (busy, quiet):
        for i in range(0, len(org_events), 5000):
            chunk = org_events[i : i + 5000]
            out = post_events(bot, chunk)
            assert out["accepted"] == out["history"] == len(chunk)
            assert (out["rejected"], out["anomalies"], out["decisions"]) == ([], 0, {})
    with bot.db.read() as session:
        assert session.scalar(select(func.count()).select_from(AerAnomaly)) == 0
        assert session.scalar(select(func.count()).select_from(Outbox)) == 0
        total = session.scalar(select(func.sum(AerCounter.count)))
    assert total == sum(e["count"] for e in busy + quiet)
    assert fs.session_resets == [] and fs.calls_to("chat.postMessage") == []


def test_live_events_are_judged_and_the_answer_tells_history_apart(make_bot: MakeBot) -> None:
    bot = make_bot(live_window="10m")
    old = (datetime.now(UTC) - timedelta(minutes=20)).isoformat()
    base = {"org": QUIET, "user": "UALICE", "action": "login", "ip": "198.51.100.7"}
    out = post_events(bot, [{**base, "ts": old, "session": "SOLD"}, {**base, "session": "SNEW"}])
    assert (out["accepted"], out["history"], out["anomalies"]) == (2, 1, 1)
    with bot.db.read() as session:
        sessions = session.scalars(select(AerAnomaly.session_id)).all()
    assert sessions == ["SNEW"]  # the same Tor exit 20 minutes ago was history
