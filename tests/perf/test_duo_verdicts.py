"""A push's answer is applied at once, however much other work is queued (issue #25.5): with
2,000 people pushed together, the default thread pool is busy with their push starts, and an
approval applied there waited behind all of them (p50 0.6 s, p99 1.9 s at 1,000 pushes)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial

import pytest
from sqlalchemy import update

from securitybot.outbox.dispatcher import Dispatcher, Done, Job
from securitybot.store.db import Database, WriteLock
from securitybot.store.models import Alert, Outbox
from securitybot.store.outbox import enqueue
from tests.perf.duo_handlers import duo_handlers

QUEUED = 40  # push starts' database work queued behind the busy threads


SETTLE = 0.3  # long enough for the threads just started to be waiting for the lock


def _queue_behind(release: Callable[[], None], first: list[Callable[[], None]],
                  then: list[Callable[[], None]]) -> None:  # fmt: skip
    """Writers queue behind a held lock: ``first`` ones, then ``then`` ones; ``release`` lets
    the lock go once all of them wait, and every writer is waited for."""
    early = [threading.Thread(target=write) for write in first]
    for t in early:
        t.start()
    time.sleep(SETTLE)
    late = [threading.Thread(target=write) for write in then]
    for t in late:
        t.start()
    time.sleep(SETTLE)
    release()
    for t in [*early, *late]:
        t.join(10)


def _take_turn(lock: WriteLock, order: list[str], name: str, priority: bool) -> None:
    """A writer on the lock alone: waits for it, notes its turn in ``order``, commits briefly."""
    lock.acquire(priority)
    order.append(name)
    time.sleep(0.01)
    lock.release()


@contextmanager
def _write_held(db: Database) -> Iterator[Callable[[], None]]:
    """A write transaction held open on a thread of its own (a push start's, committing);
    yields what releases it."""
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with db.write():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    holding.wait(10)
    try:
        yield release.set
    finally:
        release.set()
        thread.join(10)


def _alert(db: Database, txid: str) -> int:
    with db.write() as session:
        alert = Alert(kind="sensitive_command", severity="high", source="test",
                      user_given="alice@example.com", title="flurb -export", description="",
                      status="awaiting_2fa", duo_txid=txid, details={})  # fmt: skip
        session.add(alert)
        session.flush()
        return alert.id


def test_a_verdict_is_applied_while_push_starts_fill_the_thread_pool(db: Database) -> None:
    with duo_handlers(db) as (fd, verifier, handlers):
        gate = threading.Event()

        def busy() -> None:  # a push start's thread, held up (a slow lookup, a slow commit)
            gate.wait(30)

        def push_start_write(i: int) -> None:  # what a push start writes, once it runs
            with db.write() as session:
                enqueue(session, effect="update_dm", alert_id=None, payload={"i": i},
                        idempotency_key=f"queued:{i}")  # fmt: skip

        async def scenario() -> tuple[object, float, int]:
            loop = asyncio.get_running_loop()
            pool = ThreadPoolExecutor(4, thread_name_prefix="default")
            loop.set_default_executor(pool)
            started = await verifier.start_push("alice", {"Alert": "1"})
            assert started.txid is not None
            alert_id = await asyncio.to_thread(_alert, db, started.txid)
            blocked = [asyncio.ensure_future(asyncio.to_thread(busy)) for _ in range(4)]
            queued = [asyncio.ensure_future(asyncio.to_thread(push_start_write, i))
                      for i in range(QUEUED)]  # fmt: skip
            fd.answer_push(started.txid, "allow")
            job = Job(id=1, effect="poll_duo", alert_id=alert_id,
                      payload={"txid": started.txid}, attempts=0,
                      created_at=datetime.now(UTC))  # fmt: skip
            t0 = time.monotonic()
            try:
                outcome = await asyncio.wait_for(handlers.poll_duo(job), timeout=10)
            finally:
                took = time.monotonic() - t0
                gate.set()
                await asyncio.gather(*blocked, *queued)
                verifier.close()
            # The queued push starts were still waiting: the verdict did not wait for them.
            return outcome, took, alert_id

        outcome, took, alert_id = asyncio.run(scenario())
    assert isinstance(outcome, Done)
    assert took < 5
    with db.read() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None and alert.status == "resolved"
        queued = Outbox.idempotency_key.like("queued:%")
        assert session.query(Outbox).filter(queued).count() == QUEUED


def test_sqlite_write_lock_lets_a_priority_writer_go_before_queued_writers() -> None:
    lock = WriteLock()
    order: list[str] = []
    lock.acquire()  # a push start's transaction, committing
    pushes = [partial(_take_turn, lock, order, f"push{i}", False) for i in range(10)]
    _queue_behind(lock.release, pushes, [partial(_take_turn, lock, order, "verdict", True)])
    assert order[0] == "verdict"
    assert sorted(order[1:]) == sorted(f"push{i}" for i in range(10))


# PostgreSQL has no process-wide writer lock; its rows lock on their own.
@pytest.mark.parametrize("backend", ["sqlite"])
def test_priority_writes_on_a_database_go_first(db: Database) -> None:
    assert db.is_sqlite
    alert_id = _alert(db, "tx-1")
    order: list[str] = []

    def write(name: str, priority: bool) -> None:
        with db.write(priority=priority) as session:
            session.execute(update(Alert).where(Alert.id == alert_id).values(title=name))
            order.append(name)

    with _write_held(db) as release:
        pushes = [partial(write, f"push{i}", False) for i in range(5)]
        _queue_behind(release, pushes, [partial(write, "verdict", True)])
    assert order[0] == "verdict" and len(order) == 6


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_held_effect_is_claimed_before_queued_writes(db: Database) -> None:
    """A push's poll is claimed before the burst's queued writes: until it is, nothing
    listens for the person's answer (SQLite; PostgreSQL claims with SKIP LOCKED anyway)."""
    assert db.is_sqlite
    with db.write() as session:
        enqueue(session, effect="poll_duo", alert_id=None, payload={"txid": "tx-1"},
                idempotency_key="poll:tx-1")  # fmt: skip
    dispatcher = Dispatcher(db, {}, held=frozenset({"poll_duo"}))
    order: list[str] = []

    def write(i: int) -> None:
        with db.write() as session:
            enqueue(session, effect="update_dm", alert_id=None, payload={"i": i},
                    idempotency_key=f"queued:{i}")  # fmt: skip
            order.append(f"push{i}")

    def claim() -> None:
        jobs = dispatcher._claim(10, "poll_duo")
        order.append(f"claimed {[job.payload['txid'] for job in jobs]}")

    with _write_held(db) as release:
        _queue_behind(release, [partial(write, i) for i in range(5)], [claim])
    assert order[0] == "claimed ['tx-1']" and len(order) == 6


def test_a_stream_of_priority_writes_never_stops_ordinary_writers() -> None:
    lock = WriteLock(burst=4)
    order: list[str] = []
    lock.acquire()
    verdicts = [partial(_take_turn, lock, order, f"verdict{i}", True) for i in range(10)]
    _queue_behind(lock.release, [partial(_take_turn, lock, order, "push", False)], verdicts)
    assert len(order) == 11
    assert order.index("push") == 4  # four verdicts first, then the waiting push start
