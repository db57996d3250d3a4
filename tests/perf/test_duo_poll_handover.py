"""A push's poll is held in Duo from the moment the push is recorded (issue #25.5): on
PostgreSQL, with 2,000 people pushed at once, waiting for the outbox to claim the poll job held
the first poll back so long (p99 1.8 s after the approval) that most people approved before
anyone listened for their answer."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from securitybot.flows.conversation import HELD_EFFECTS, UNORDERED_EFFECTS
from securitybot.outbox.dispatcher import Dispatcher
from securitybot.store.db import Database
from securitybot.store.models import Alert, Outbox
from tests.perf.duo_handlers import awaiting_push, duo_handlers


def _poll_row(db: Database, alert_id: int) -> Outbox | None:
    with db.read() as session:
        return session.scalars(
            select(Outbox).where(Outbox.alert_id == alert_id, Outbox.effect == "poll_duo")
        ).first()


def test_the_poll_is_held_in_duo_without_waiting_for_a_claim(db: Database) -> None:
    with duo_handlers(db) as (fd, verifier, handlers):
        # Nobody is woken and the claimers look again only after a minute: a poll held at
        # once can only have come straight from the push.
        dispatcher = Dispatcher(db, handlers.handlers(), idle_poll=60.0,
                                unordered=UNORDERED_EFFECTS, held=HELD_EFFECTS)  # fmt: skip
        handlers.handover = dispatcher
        alert_id = awaiting_push(db)

        async def scenario() -> tuple[bool, Outbox | None]:
            await dispatcher.start()
            try:
                held = False
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not held:
                    held = any(push.held for push in list(fd._pushes.values()))
                    await asyncio.sleep(0.02)
                # Leased to this process while it holds the poll: no other replica claims it.
                row = await asyncio.to_thread(_poll_row, db, alert_id)
                for push in list(fd._pushes.values()):
                    fd.answer_push(push.txid, "allow")
                for _ in range(500):
                    with db.read() as session:
                        if session.get(Alert, alert_id).status == "resolved":  # type: ignore[union-attr]
                            break
                    await asyncio.sleep(0.02)
                return held, row
            finally:
                await dispatcher.stop()
                verifier.close()

        held, row = asyncio.run(scenario())
    assert held, "the push's poll was not held in Duo without a claim"
    assert row is not None and row.locked_until is not None and row.claims == 1
    with db.read() as session:
        assert session.get(Alert, alert_id).status == "resolved"  # type: ignore[union-attr]
        polled = session.scalars(select(Outbox).where(Outbox.effect == "poll_duo")).one()
        assert polled.status == "done" and polled.locked_until is None
