"""What waiting pushes cost, counted: a push polled again while every Duo long-poll slot is held
must not touch the database (hundreds of pushes waiting on phones are each polled every second).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from securitybot.config import DuoConfig, Settings
from securitybot.demo import FakeDuo
from securitybot.flows.conversation import ConversationHandlers
from securitybot.kinds import load_kinds
from securitybot.outbox.dispatcher import Job, RetryAt
from securitybot.store.db import Database
from securitybot.verify.duo import DuoVerifier
from tests.perf.counting import counted

IKEY, SKEY = "DIXXXXXXXXXXXXXXXXXX", "s" * 40


def test_a_push_polled_while_every_slot_is_held_costs_no_database_work(db: Database) -> None:
    with FakeDuo(ikey=IKEY, skey=SKEY) as fd:
        fd.enroll("alice")
        fd.status_delay = 30.0  # auth_status holds until the phone answers, as Duo's does
        cfg = DuoConfig.model_validate({"ikey": IKEY, "skey": SKEY, "api_host": fd.api_host,
                                        "ca_certs": fd.ca_path})  # fmt: skip
        verifier = DuoVerifier(cfg, max_polls=1)
        settings = Settings()
        handlers = ConversationHandlers(db=db, settings=settings,
                                        kinds=load_kinds(settings.alerts.dir), slack=None,
                                        verifier=verifier, wake=lambda *_: None)  # fmt: skip

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
