"""Batch lanes: effects with a batch handler are claimed and run many jobs at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import func, select

from securitybot.outbox.dispatcher import Dispatcher, Done, GiveUp, Job, Outcome, RetryAt
from securitybot.store.db import Database
from securitybot.store.models import Outbox, utcnow
from securitybot.store.outbox import enqueue


def _enqueue_many(db: Database, effect: str, n: int, *, alert_ids: bool = True) -> list[int]:
    with db.write() as session:
        for i in range(n):
            enqueue(session, effect=effect, alert_id=None, idempotency_key=f"{effect}:{i}")
        return list(session.scalars(select(Outbox.id).where(Outbox.effect == effect)))


def _statuses(db: Database, effect: str) -> dict[str, int]:
    with db.read() as session:
        rows = session.execute(
            select(Outbox.status, func.count()).where(Outbox.effect == effect)
            .group_by(Outbox.status)
        )  # fmt: skip
        return {status: n for status, n in rows}


@contextlib.asynccontextmanager
async def _running(dispatcher: Dispatcher) -> AsyncIterator[None]:
    await dispatcher.start()
    try:
        yield
    finally:
        await dispatcher.stop()


async def _until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_a_backlog_of_one_effect_runs_in_batches_not_job_by_job(db: Database) -> None:
    batches: list[int] = []

    async def many(jobs: list[Job]) -> list[Outcome]:
        batches.append(len(jobs))
        return [Done() for _ in jobs]

    _enqueue_many(db, "greet", 250)
    dispatcher = Dispatcher(db, {}, batch_handlers={"greet": many}, batch=100, lanes=1,
                            idle_poll=0.05)  # fmt: skip
    async with _running(dispatcher):
        await _until(lambda: _statuses(db, "greet") == {"done": 250})
    assert batches == [100, 100, 50]


async def test_the_general_loop_leaves_a_lanes_effect_alone(db: Database) -> None:
    singles: list[str] = []
    batched: list[str] = []

    async def one(job: Job) -> Outcome:
        singles.append(job.effect)
        return Done()

    async def many(jobs: list[Job]) -> list[Outcome]:
        batched.extend(job.effect for job in jobs)
        return [Done() for _ in jobs]

    _enqueue_many(db, "greet", 20)
    _enqueue_many(db, "post", 5)
    dispatcher = Dispatcher(db, {"greet": one, "post": one}, batch_handlers={"greet": many},
                            idle_poll=0.05)  # fmt: skip
    async with _running(dispatcher):
        await _until(lambda: _statuses(db, "greet") == {"done": 20}
                     and _statuses(db, "post") == {"done": 5})  # fmt: skip
    assert singles == ["post"] * 5
    assert batched == ["greet"] * 20


async def test_each_job_of_a_batch_gets_its_own_outcome(db: Database) -> None:
    ids = _enqueue_many(db, "greet", 3)

    async def many(jobs: list[Job]) -> list[Outcome]:
        later = utcnow().replace(year=utcnow().year + 1)
        return [Done(), RetryAt(later, "Slack said later"), GiveUp("no such person")]

    dispatcher = Dispatcher(db, {}, batch_handlers={"greet": many}, lanes=1, idle_poll=0.05)
    async with _running(dispatcher):
        await _until(lambda: sum(_statuses(db, "greet").get(s, 0) for s in ("done", "dead")) == 2)
        await asyncio.sleep(0.1)
    with db.read() as session:
        rows = {r.id: r for r in session.scalars(select(Outbox).where(Outbox.id.in_(ids)))}
    first, second, third = sorted(ids)
    assert rows[first].status == "done"
    assert (rows[second].status, rows[second].attempts) == ("pending", 1)
    assert rows[second].last_error == "Slack said later"
    assert (rows[third].status, rows[third].last_error) == ("dead", "no such person")


async def test_a_batch_handler_that_crashes_retries_all_its_jobs(db: Database) -> None:
    _enqueue_many(db, "greet", 4)
    calls: list[int] = []

    async def many(jobs: list[Job]) -> list[Outcome]:
        calls.append(len(jobs))
        raise RuntimeError("a bug")

    dispatcher = Dispatcher(db, {}, batch_handlers={"greet": many}, lanes=1, idle_poll=0.05)
    async with _running(dispatcher):
        await _until(lambda: calls)
        await asyncio.sleep(0.2)
    with db.read() as session:
        rows = list(session.scalars(select(Outbox).where(Outbox.effect == "greet")))
    assert calls[0] == 4
    assert {(r.status, r.attempts) for r in rows} == {("pending", 1)}
    assert all("RuntimeError: a bug" in (r.last_error or "") for r in rows)


async def test_a_long_batch_keeps_its_lease_so_nobody_claims_its_jobs_again(db: Database) -> None:
    _enqueue_many(db, "greet", 3)
    runs: list[list[int]] = []

    async def slow(jobs: list[Job]) -> list[Outcome]:
        runs.append([job.claims for job in jobs])
        await asyncio.sleep(2.0)  # several leases long: renewed meanwhile
        return [Done() for _ in jobs]

    dispatcher = Dispatcher(db, {}, batch_handlers={"greet": slow}, lanes=2, lease=0.6,
                            idle_poll=0.05)  # fmt: skip
    async with _running(dispatcher):
        await _until(lambda: _statuses(db, "greet") == {"done": 3})
    assert runs == [[1, 1, 1]]


async def test_stopping_does_not_wait_out_an_idle_lanes_poll(db: Database) -> None:
    async def many(jobs: list[Job]) -> list[Outcome]:
        return [Done() for _ in jobs]

    # Two lanes: one waits for work holding the turn, the other waits for the turn.
    dispatcher = Dispatcher(db, {}, batch_handlers={"greet": many}, lanes=2, idle_poll=60)
    await dispatcher.start()
    await asyncio.sleep(0.2)
    async with asyncio.timeout(10):  # not a minute: the waiting lane sees the stop at once
        await dispatcher.stop()


async def test_new_work_of_one_effect_wakes_only_who_claims_it(
    db: Database, monkeypatch: Any
) -> None:
    """Every alert ingested wakes the dispatcher. At 100 alerts a second that was 1.4 claims per
    alert that could find nothing (the general loop's and the send_dm lane's); a wake-up now
    names the effects written, and only their claimers look."""
    from securitybot.outbox import leases

    claims: list[str] = []
    real_claim = leases.claim

    def counted(db_: Database, statement: Any, values: dict[str, Any], **kw: Any) -> list[Job]:
        claims.append(values.get("only", "general"))
        return real_claim(db_, statement, values, **kw)

    monkeypatch.setattr(leases, "claim", counted)

    async def many(jobs: list[Job]) -> list[Outcome]:
        return [Done() for _ in jobs]

    async def one(job: Job) -> Outcome:
        return Done()

    dispatcher = Dispatcher(db, {"post": one}, batch_handlers={"greet": many, "send": many},
                            idle_poll=30.0)  # fmt: skip

    async def who_looks_after_writing(effect: str, n: int) -> set[str]:
        claims.clear()
        _enqueue_many(db, effect, n)
        dispatcher.notify([effect])
        await _until(lambda: _statuses(db, effect) == {"done": n})
        await asyncio.sleep(0.2)  # room for a needless claim to show up
        return set(claims)

    async with _running(dispatcher):
        await _until(lambda: len(claims) >= 3)  # each claimer looks once at start
        await asyncio.sleep(0.1)
        assert await who_looks_after_writing("greet", 3) == {"greet"}
        assert await who_looks_after_writing("post", 2) == {"general"}
        claims.clear()
        dispatcher.notify()  # nothing named: everyone looks, as before
        await _until(lambda: set(claims) == {"general", "greet", "send"})
