"""The dispatcher under faults: lost outcomes, lapsed leases, dropped database connections."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError

from securitybot.outbox.dispatcher import Dispatcher, Done, Job, Outcome
from securitybot.store.db import Database
from securitybot.store.models import Outbox, utcnow
from securitybot.store.outbox import enqueue

NEVER_RETRIEVED = "Task exception was never retrieved"


def _enqueue(db: Database, effect: str = "post") -> int:
    with db.write() as session:
        enqueue(session, effect=effect, idempotency_key=f"{effect}:1")
        return int(session.scalar(select(Outbox.id).where(Outbox.effect == effect)) or 0)


def _row(db: Database, job_id: int) -> Outbox:
    with db.read() as session:
        row = session.get(Outbox, job_id)
        assert row is not None
        return row


async def _until(predicate: Callable[[], Any], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def _lost_connection() -> OperationalError:
    return OperationalError("UPDATE outbox ...", {}, Exception("server closed the connection"),
                            connection_invalidated=True)  # fmt: skip


async def test_a_job_whose_outcome_was_lost_runs_again_as_a_retry(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[int] = []

    async def post(job: Job) -> Outcome:
        runs.append(job.claims)
        return Done()

    job_id = _enqueue(db)
    dispatcher = Dispatcher(db, {"post": post}, lease=0.5, idle_poll=0.05)
    record = dispatcher._record_many

    def record_fails_first_time(items: list[tuple[Job, Outcome]]) -> None:
        if len(runs) == 1:  # every try of the first run's outcome is lost
            raise _lost_connection()
        record(items)

    dispatcher._record_many = record_fails_first_time  # type: ignore[method-assign]
    await dispatcher.start()
    try:
        await _until(lambda: _row(db, job_id).status == "done")
    finally:
        await dispatcher.stop()
    # The lease ran out and the job ran again: its handler is told it is not the first claim.
    assert runs == [1, 2]
    gc.collect()
    assert NEVER_RETRIEVED not in caplog.text


async def test_a_job_whose_lease_lapsed_while_it_runs_is_not_started_again_here(
    db: Database,
) -> None:
    started: list[int] = []
    release = asyncio.Event()

    async def post(job: Job) -> Outcome:
        started.append(job.claims)
        await release.wait()
        return Done()

    job_id = _enqueue(db)
    dispatcher = Dispatcher(db, {"post": post}, lease=0.3, idle_poll=0.05)

    def renewal_fails(ids: list[int]) -> None:
        raise _lost_connection()

    dispatcher._renew = renewal_fails  # type: ignore[method-assign]
    await dispatcher.start()
    try:
        # The lease lapses and this process claims its own running job again...
        await _until(lambda: _row(db, job_id).claims >= 2)
        release.set()
        await _until(lambda: _row(db, job_id).status == "done")
    finally:
        await dispatcher.stop()
    assert started == [1]  # ...without running a second copy next to the first


async def test_a_dropped_database_connection_retries_soon_without_spending_an_attempt(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async def post(job: Job) -> Outcome:
        raise _lost_connection()

    job_id = _enqueue(db)
    dispatcher = Dispatcher(db, {"post": post}, idle_poll=0.05)
    caplog.set_level(logging.WARNING, logger="securitybot.outbox.dispatcher")
    await dispatcher.start()
    try:
        await _until(lambda: _row(db, job_id).claims >= 1 and _row(db, job_id).locked_until is None)
    finally:
        await dispatcher.stop()
    row = _row(db, job_id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 0, None)
    assert row.next_attempt_at <= utcnow() + timedelta(seconds=1)  # backoff(1): 0.5-1 s
    assert "database connection lost" in caplog.text


async def test_outcomes_that_finish_together_are_recorded_together(db: Database) -> None:
    """A burst of jobs costs a few transactions for their outcomes, not one each."""
    with db.write() as session:
        for i in range(60):
            enqueue(session, effect="post", idempotency_key=f"post:{i}")
    release = asyncio.Event()

    async def post(job: Job) -> Outcome:
        await release.wait()
        return Done()

    commits: list[object] = []
    event.listen(db.engine, "commit", lambda conn: commits.append(conn))
    dispatcher = Dispatcher(db, {"post": post}, idle_poll=0.05)
    await dispatcher.start()
    try:
        await _until(lambda: len(dispatcher._inflight) == 60)
        before = len(commits)
        release.set()
        await _until(lambda: not dispatcher._inflight)
        recording = len(commits) - before
    finally:
        await dispatcher.stop()
    with db.read() as session:
        statuses = set(session.scalars(select(Outbox.status)))
    assert statuses == {"done"}
    assert recording <= 5, recording


async def test_jobs_of_one_alert_never_overlap_even_when_one_arrives_as_another_hands_over(
    db: Database,
) -> None:
    """Three jobs of one alert: the second waits for the first; the third is claimed while
    the second runs (it arrived as the first handed over) and must wait for it too."""
    from securitybot.store.models import Alert

    with db.write() as session:
        alert = Alert(kind="k", severity="high", source="t", user_given="u", title="t",
                      status="new")  # fmt: skip
        session.add(alert)
        session.flush()
        alert_id = alert.id
        for name in ("first", "second"):
            enqueue(session, effect=name, alert_id=alert_id, idempotency_key=name)
    running: list[str] = []
    overlaps: list[tuple[str, str]] = []
    dispatcher: Dispatcher

    async def run(job: Job) -> Outcome:
        for other in running:
            overlaps.append((other, job.effect))
        running.append(job.effect)
        if job.effect == "second":
            with db.write() as session:  # arrives while the second runs
                enqueue(session, effect="third", alert_id=alert_id, idempotency_key="third")
            dispatcher.notify()
        await asyncio.sleep(0.3 if job.effect == "second" else 0.05)
        running.remove(job.effect)
        return Done()

    dispatcher = Dispatcher(db, {"first": run, "second": run, "third": run}, idle_poll=0.02)
    await dispatcher.start()
    try:
        await _until(lambda: _done(db) == ["first", "second", "third"])
    finally:
        await dispatcher.stop()
    assert overlaps == []


def _done(db: Database) -> list[str]:
    with db.read() as session:
        return list(session.scalars(
            select(Outbox.effect).where(Outbox.status == "done").order_by(Outbox.id)
        ))  # fmt: skip


async def test_held_jobs_waiting_on_a_phone_never_hold_back_other_work(db: Database) -> None:
    """Many pushes waiting in Duo's long-poll at once (more than ``concurrency``): every one
    is held, and other work still runs at once beside them."""
    answered = asyncio.Event()
    holding: set[int] = set()
    posted: list[int] = []

    async def poll(job: Job) -> Outcome:
        holding.add(job.id)
        await answered.wait()
        return Done()

    async def post(job: Job) -> Outcome:
        posted.append(job.id)
        return Done()

    with db.write() as session:
        for i in range(20):
            enqueue(session, effect="poll_duo", idempotency_key=f"poll:{i}")
    dispatcher = Dispatcher(db, {"poll_duo": poll, "post": post}, concurrency=4,
                            idle_poll=0.05, held=frozenset({"poll_duo"}))  # fmt: skip
    await dispatcher.start()
    try:
        await _until(lambda: len(holding) == 20)
        job_id = _enqueue(db)
        dispatcher.notify()
        await _until(lambda: posted == [job_id], timeout=5)
        answered.set()
        await _until(lambda: _row(db, job_id).status == "done")
    finally:
        await dispatcher.stop()
