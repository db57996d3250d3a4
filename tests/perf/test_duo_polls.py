"""What waiting pushes cost, counted: a push polled again while every Duo long-poll slot is held
must not touch the database (hundreds of pushes waiting on phones are each polled every second).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from securitybot.outbox.dispatcher import Job, RetryAt
from securitybot.store.db import Database
from tests.perf.counting import counted
from tests.perf.duo_handlers import duo_handlers


def test_a_push_polled_while_every_slot_is_held_costs_no_database_work(db: Database) -> None:
    with duo_handlers(db, max_polls=1) as (fd, verifier, handlers):
        fd.status_delay = 30.0  # auth_status holds until the phone answers, as Duo's does

        async def scenario() -> tuple[object, dict[str, int]]:
            first = await verifier.start_push("alice", {"Alert": "1"})
            second = await verifier.start_push("alice", {"Alert": "2"})
            assert first.txid and second.txid
            # The verifier asks again after Duo's first "pushed" and Duo holds that call until
            # the phone answers: the one slot is held.
            held = asyncio.create_task(verifier.poll(first.txid))
            for _ in range(100):
                if verifier.saturated():
                    break
                await asyncio.sleep(0.05)
            assert verifier.saturated()
            job = Job(id=1, effect="poll_duo", alert_id=2, payload={"txid": second.txid},
                      attempts=0, created_at=datetime.now(UTC))  # fmt: skip
            with counted(db) as seen:
                outcome = await handlers.poll_duo(job)
            verifier.close()  # releases the held poll
            await held
            return outcome, seen

        outcome, seen = asyncio.run(scenario())
    assert isinstance(outcome, RetryAt) and not outcome.failure
    assert seen == {"transactions": 0, "statements": 0}
