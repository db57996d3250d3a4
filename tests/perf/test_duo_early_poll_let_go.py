"""An early poll (asked of Duo while its push is recorded, ``ConversationHandlers._poll_early``)
that nobody will apply is let go for real: when the record finds the alert moved on, or the
record fails, its HTTP request is cancelled, so Duo's long-poll connection is closed without an
answer (the fake Duo lists the hung-up poll in ``dropped``) and the push's answer is not spent
on it: whoever polls the push next still reads it."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import OperationalError

from securitybot.store.db import Database
from securitybot.store.models import Alert
from securitybot.verify.base import PushStatus
from tests.perf.duo_handlers import awaiting_push, recorded_slowly, until


def _moved_on(db: Database, alert_id: int) -> None:
    with db.write() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        alert.status, alert.outcome = "escalated", "duo_timeout"  # e.g. closed meanwhile


@pytest.mark.parametrize("record", ["finds the alert moved on", "fails"])
def test_an_early_poll_nobody_applies_hangs_up_on_duo_and_leaves_the_answer(
    db: Database, record: str
) -> None:
    fail = OperationalError("UPDATE alerts", {}, Exception("database is locked"))
    with recorded_slowly(db, fail=fail if record == "fails" else None) as (
        fd, verifier, handlers, dispatcher, gate,
    ):  # fmt: skip
        fd.notice_drops = 0.02  # a hold looks for a hung-up client, not only when it ends
        alert_id = awaiting_push(db)

        async def scenario() -> dict[str, object]:
            await dispatcher.start()
            try:
                assert await until(lambda: any(p.held for p in list(fd._pushes.values())))
                [push] = list(fd._pushes.values())
                if record != "fails":
                    await asyncio.to_thread(_moved_on, db, alert_id)
                gate.set()
                # Duo sees the early poll's connection closed, with nothing answered on it.
                hung_up = await until(lambda: bool(fd.dropped) and not push.held)
                seen: dict[str, object] = {
                    "hung up": hung_up, "dropped": list(fd.dropped) == [push.txid],
                    "polls held": verifier._polls, "early polls kept": len(handlers._early_polls),
                }  # fmt: skip
                fd.answer_push(push.txid, "allow")
                # The answer is Duo's to give to whoever polls the push next (another
                # replica, a restart): nobody read it on the way.
                seen["read by nobody"] = push.answered_at is None
                seen["next poll"] = (await verifier.poll(push.txid)).status
                return seen
            finally:
                gate.set()
                await dispatcher.stop()
                verifier.close()

        seen = asyncio.run(scenario())
    assert seen == {"hung up": True, "dropped": True, "polls held": 0, "early polls kept": 0,
                    "read by nobody": True, "next poll": PushStatus.APPROVED}  # fmt: skip
