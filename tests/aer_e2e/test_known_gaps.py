"""Issue 14 item 5: a reset Slack refuses is not history; a failed write loses no anomaly."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from securitybot.aer.events import parse_event
from securitybot.aer.service import AerService
from securitybot.config import AerConfig
from securitybot.demo import FakeSlack
from securitybot.store.aer_models import AerAnomaly, AerUserState
from securitybot.store.db import Database
from tests.aer_e2e.conftest import QUIET, TOR_IP, MakeBot, aer_config, get, post_events
from tests.e2e.harness import wait_until


def test_a_reset_slack_refuses_does_not_count_as_a_reset(make_bot: MakeBot, fs: FakeSlack) -> None:
    bot = make_bot()
    tor = {"org": QUIET, "user": "UOWNER", "action": "login", "ip": TOR_IP}
    post_events(bot, [{**tor, "session": "SOWN1"}])

    def refused() -> bool:
        rows = get(bot, "/api/v1/anomalies", org=QUIET)["anomalies"]
        return any((r.get("response") or "").startswith("reset_refused") for r in rows)

    wait_until(refused, what="Slack refusing to reset the primary owner")
    with bot.db.read() as session:
        state = session.get(AerUserState, (QUIET, "UOWNER"))
        assert state is not None and state.last_reset_at is None and state.reset_sessions == []
    # A new session right after: with the refused reset counted this was "persistence after
    # reset" and nobody would try containment again; it is a plain reset decision instead.
    assert post_events(bot, [{**tor, "session": "SOWN2"}])["decisions"] == {"reset": 1}
    assert fs.session_resets == []


def _tor_event(session: str) -> object:
    raw = {"org": QUIET, "user": "UALICE", "action": "login", "ip": TOR_IP, "session": session}
    return parse_event(raw, datetime.now(UTC))


def test_anomalies_of_a_batch_whose_write_failed_are_decided_with_the_next_write(
    db: Database,
) -> None:
    svc = AerService(AerConfig.model_validate(aer_config()), db)
    with db.engine.begin() as conn:  # a real failure: the table is gone for a moment
        conn.execute(text("ALTER TABLE aer_anomalies RENAME TO aer_anomalies_away"))
    with pytest.raises(DBAPIError):
        svc.ingest([_tor_event("S1")])  # type: ignore[list-item]
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE aer_anomalies_away RENAME TO aer_anomalies"))
    # The engine will not raise S1's Tor anomaly again (deduped); the retry carries it.
    result = svc.ingest([_tor_event("S1")])  # type: ignore[list-item]
    assert result.decisions == {"reset": 1}
    with db.read() as session:
        rows = session.execute(select(AerAnomaly.session_id, AerAnomaly.verdict)).all()
    assert rows == [("S1", "reset")]
