"""A push's poll goes to the connection pool its push used (``DuoAuthApi.pin``): the pool that
holds the connection its auth just kept alive. The pins are bounded (``MAX_PINNED``): the oldest
are dropped, and a push whose pin was dropped is still polled (in the pool its txid picks); a
push that reached its final answer is unpinned at once, so finished pushes leave nothing behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from securitybot.config import DuoConfig
from securitybot.demo import FakeDuo
from securitybot.flows.conversation import HELD_EFFECTS, UNORDERED_EFFECTS
from securitybot.outbox.dispatcher import Dispatcher
from securitybot.store.db import Database
from securitybot.verify import duo_api
from securitybot.verify.base import PushStatus, StartResult
from securitybot.verify.duo import DuoVerifier
from tests.perf.duo_handlers import IKEY, SKEY, awaiting_push, duo_handlers, read_alert, until

PEOPLE = [f"user{i}" for i in range(5)]


@pytest.fixture
def fd() -> Iterator[FakeDuo]:
    with FakeDuo(ikey=IKEY, skey=SKEY) as fake:
        for name in PEOPLE:
            fake.enroll(name)
        yield fake


def _verifier(fd: FakeDuo) -> DuoVerifier:
    return DuoVerifier(DuoConfig.model_validate(
        {"ikey": IKEY, "skey": SKEY, "api_host": fd.api_host, "ca_certs": fd.ca_path}
    ))  # fmt: skip


def _pools_asked(verifier: DuoVerifier) -> list[str]:
    """The keys the verifier's calls chose their pool by, from now on."""
    api = verifier._api
    chosen: list[str] = []
    pick = api._http

    def noted(key: str) -> httpx.AsyncClient:
        chosen.append(key)
        return pick(key)

    api._http = noted  # type: ignore[method-assign]
    return chosen


async def _push_all(verifier: DuoVerifier) -> list[str]:
    txids = []
    for name in PEOPLE:
        started = await verifier.start_push(name, {"Alert": "flurb -export"})
        assert started.result == StartResult.PUSHED and started.txid is not None
        txids.append(started.txid)
    return txids


async def test_the_oldest_pins_go_and_their_pushes_are_still_polled(
    fd: FakeDuo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(duo_api, "MAX_PINNED", 3)
    verifier = _verifier(fd)
    try:
        txids = await _push_all(verifier)
        # Five pushes, room for three pins: the two oldest were dropped, nothing grew past 3.
        assert list(verifier._api._pinned) == txids[2:]
        for txid in (txids[0], txids[-1]):
            fd.answer_push(txid, "allow")
        chosen = _pools_asked(verifier)
        dropped = await verifier.poll(txids[0])
        pinned = await verifier.poll(txids[-1])
    finally:
        verifier.close()
        await asyncio.sleep(0)
    assert dropped.status == PushStatus.APPROVED, dropped.detail
    assert pinned.status == PushStatus.APPROVED, pinned.detail
    # The pinned push's poll went to its username's pool; the dropped one's to its txid's.
    assert chosen == [txids[0], PEOPLE[-1]]


async def test_pushes_that_reach_their_final_answer_leave_no_pin(fd: FakeDuo) -> None:
    verifier = _verifier(fd)
    answers = ["allow", "deny", "fraud", "timeout"]
    try:
        txids = await _push_all(verifier)
        assert len(verifier._api._pinned) == len(PEOPLE)
        for txid, answer in zip(txids, answers, strict=False):
            fd.answer_push(txid, answer)
        polled = [await verifier.poll(txid) for txid in txids[: len(answers)]]
        still = txids[len(answers)]
        fd.status_delay = 0.05  # Duo's hold ends without an answer: "still waiting"
        waiting = await verifier.poll(still)
    finally:
        verifier.close()
        await asyncio.sleep(0)
    assert [p.status for p in polled] == [PushStatus.APPROVED, PushStatus.DENIED,
                                          PushStatus.FRAUD, PushStatus.TIMEOUT]  # fmt: skip
    assert waiting.status == PushStatus.WAITING
    # Only the push still waiting on its phone keeps its pin (its next poll needs it).
    assert list(verifier._api._pinned) == [still]


def test_alerts_whose_pushes_were_answered_leave_no_pin(db: Database) -> None:
    """The whole way, as the service runs it: pushes started, polled (early, while recorded),
    answered and applied; nothing stays pinned for them."""
    with duo_handlers(db) as (fd, verifier, handlers):
        dispatcher = Dispatcher(db, handlers.handlers(), idle_poll=60.0,
                                unordered=UNORDERED_EFFECTS, held=HELD_EFFECTS)  # fmt: skip
        handlers.handover = dispatcher
        alerts = [awaiting_push(db) for _ in range(5)]

        def resolved() -> bool:
            for push in fd.pending_pushes():
                fd.answer_push(push.txid, "allow")
            return all(read_alert(db, a).status == "resolved" for a in alerts)

        async def scenario() -> tuple[bool, int, int]:
            await dispatcher.start()
            try:
                done = await until(resolved)
                return done, len(fd.started_pushes()), len(verifier._api._pinned)
            finally:
                await dispatcher.stop()
                verifier.close()

        done, pushed, pinned = asyncio.run(scenario())
    assert done and pushed == len(alerts)
    assert pinned == 0, f"{pinned} pins left by {pushed} answered pushes"
