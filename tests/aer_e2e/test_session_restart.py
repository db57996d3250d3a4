"""Issue 14 item 6: a restart mid-session does not forget the session's first fingerprint."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from securitybot.aer.events import ActivityEvent, parse_event
from securitybot.aer.service import AerService
from securitybot.config import AerConfig
from securitybot.store.aer_models import AerAnomaly
from securitybot.store.db import Database
from tests.aer_e2e.conftest import QUIET, aer_config

DESKTOP = "Mozilla/5.0 (Macintosh) AppleWebKit/537.36 Slack_SSB/4.36.140"


def _event(ua: str, minutes_ago: int, client: str = "desktop") -> ActivityEvent:
    now = datetime.now(UTC)
    raw = {"org": QUIET, "user": "UALICE", "action": "message_post", "session": "SLIVE",
           "user_agent": ua, "client": client,
           "ts": (now - timedelta(minutes=minutes_ago)).isoformat()}  # fmt: skip
    return parse_event(raw, now)


def test_a_hijack_after_a_restart_is_still_detected(db: Database) -> None:
    cfg = AerConfig.model_validate(aer_config())
    before = AerService(cfg, db)
    before.load_state()
    assert before.ingest([_event(DESKTOP, 10), _event(DESKTOP, 5)]).anomalies == 0
    # The process restarts (nothing flushed on the way out: a crash is the same).
    after = AerService(cfg, db)
    after.load_state()
    hijack = after.ingest([_event("python-requests/2.31", 0, client="desktop")])
    assert hijack.anomalies >= 1
    with db.read() as session:
        types = set(session.scalars(select(AerAnomaly.type)))
    assert "session_fingerprint" in types


def test_a_client_that_arrives_later_in_the_session_is_remembered_too(db: Database) -> None:
    cfg = AerConfig.model_validate(aer_config())
    before = AerService(cfg, db)
    bare = parse_event({"org": QUIET, "user": "UBOB", "action": "login", "session": "S2"},
                       datetime.now(UTC))  # fmt: skip
    desktop = replace(_event(DESKTOP, 0), user="UBOB", session="S2")
    assert before.ingest([bare, desktop]).anomalies == 0  # the session's UA and client arrive
    after = AerService(cfg, db)
    after.load_state()
    web = replace(desktop, client="web", ts=datetime.now(UTC))
    after.ingest([web])
    with db.read() as session:
        types = set(session.scalars(select(AerAnomaly.type)))
    assert "unexpected_client" in types  # (the Slack desktop UA on "web" is also a spoof)
