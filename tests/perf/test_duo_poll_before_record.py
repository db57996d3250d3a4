"""A push's poll is held in Duo while the push is still being recorded (issue #25.5): with
2,000 people pushed at once on PostgreSQL, recording each push (a write and a commit, queued
behind the others) before asking Duo was most of the time from the push to its first poll, so
people who approved at once waited for it. The record still comes before the answer is applied,
and a push that turns out not to be the alert's (the alert moved on) is never applied."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from securitybot.store.db import Database
from securitybot.store.models import Alert, Outbox
from tests.perf.duo_handlers import awaiting_push, read_alert, recorded_slowly, until


@pytest.mark.parametrize("approve_before_record", [False, True])
def test_the_poll_is_held_before_the_push_is_recorded(
    db: Database, approve_before_record: bool
) -> None:
    with recorded_slowly(db) as (fd, verifier, _, dispatcher, gate):
        alert_id = awaiting_push(db)

        async def scenario() -> tuple[bool, str | None, str]:
            await dispatcher.start()
            try:
                held = await until(lambda: any(p.held for p in list(fd._pushes.values())))
                # Still unrecorded while Duo holds its poll.
                txid_then = read_alert(db, alert_id).duo_txid
                push = next(iter(fd._pushes.values()), None)
                if approve_before_record and push is not None:
                    fd.answer_push(push.txid, "allow")
                    await asyncio.sleep(0.3)
                    # The answer is in, the record is not: nothing applied yet.
                    assert read_alert(db, alert_id).status == "awaiting_2fa"
                gate.set()
                if not approve_before_record and push is not None:
                    await until(lambda: read_alert(db, alert_id).duo_txid is not None)
                    fd.answer_push(push.txid, "allow")
                await until(lambda: read_alert(db, alert_id).status == "resolved")
                return held, txid_then, read_alert(db, alert_id).status
            finally:
                gate.set()
                await dispatcher.stop()
                verifier.close()

        held, txid_then, status = asyncio.run(scenario())
    assert held, "the push's poll was not held in Duo"
    assert txid_then is None, "the poll was held only once the push was recorded"
    assert status == "resolved"
    with db.read() as session:
        polled = session.scalars(select(Outbox).where(Outbox.effect == "poll_duo")).one()
        assert polled.status == "done" and polled.locked_until is None
        assert session.get(Alert, alert_id).outcome == "confirmed"  # type: ignore[union-attr]


def test_a_push_the_alert_no_longer_waits_for_is_polled_but_never_applied(db: Database) -> None:
    with recorded_slowly(db) as (fd, verifier, handlers, dispatcher, gate):
        alert_id = awaiting_push(db)

        def moved_on() -> None:
            with db.write() as session:
                alert = session.get(Alert, alert_id)
                assert alert is not None
                alert.status, alert.outcome = "escalated", "duo_timeout"

        async def scenario() -> None:
            await dispatcher.start()
            try:
                await until(lambda: any(p.held for p in list(fd._pushes.values())))
                await asyncio.to_thread(moved_on)  # e.g. a responder closed it meanwhile
                gate.set()
                # The early poll is let go: its long-poll slot is free again at once (the
                # fake Duo, like Duo, notices the dropped connection only when its hold ends).
                assert await until(lambda: verifier._polls == 0, seconds=5)
                assert not handlers._early_polls
                for push in list(fd._pushes.values()):
                    fd.answer_push(push.txid, "allow")
                await asyncio.sleep(0.3)
            finally:
                gate.set()
                await dispatcher.stop()
                verifier.close()

        asyncio.run(scenario())
    alert = read_alert(db, alert_id)
    assert (alert.status, alert.outcome, alert.duo_txid) == ("escalated", "duo_timeout", None)
    with db.read() as session:
        assert not session.scalars(select(Outbox).where(Outbox.effect == "poll_duo")).all()
