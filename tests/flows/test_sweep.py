"""The timer sweep under a flaky database: one failing pass never starves the others."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from securitybot.flows import sweep
from securitybot.store.db import Database
from securitybot.store.models import Outbox, utcnow
from tests.flows.stored import stored_alert


def _awaiting_answer_past_its_reminder(db: Database) -> int:
    now = utcnow()
    return stored_alert(
        db,
        status="awaiting_ack",
        dm_channel="DALICE",
        dm_ts="1.000001",
        respond_by=now + timedelta(minutes=10),
        remind_at=now - timedelta(seconds=1),
    )


def test_a_failing_deadline_pass_does_not_skip_the_reminders(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    alert_id = _awaiting_answer_past_its_reminder(db)

    def connection_dropped(*_: object, **__: object) -> int:
        raise ConnectionError("server closed the connection unexpectedly")

    monkeypatch.setattr(sweep, "sweep_overdue", connection_dropped)

    assert sweep.sweep_everything(db, claim_timeout=600, tiers=0) == 1

    with db.read() as session:
        effects = session.scalars(select(Outbox.effect).where(Outbox.alert_id == alert_id)).all()
    assert effects == ["send_reminder"]
    assert "overdue sweep failed" in caplog.text
