"""A push's answer is applied at once, however much other work is queued (issue #25.5): with
2,000 people pushed together, the default thread pool is busy with their push starts, and an
approval applied there waited behind all of them (p50 0.6 s, p99 1.9 s at 1,000 pushes)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from securitybot.config import DuoConfig, Settings
from securitybot.demo import FakeDuo
from securitybot.flows.conversation import ConversationHandlers
from securitybot.kinds import load_kinds
from securitybot.outbox.dispatcher import Dispatcher, Done, Job
from securitybot.store.db import Database, WriteLock
from securitybot.store.models import Alert, Outbox
from securitybot.store.outbox import enqueue
from securitybot.verify.duo import DuoVerifier

IKEY, SKEY = "DIXXXXXXXXXXXXXXXXXX", "s" * 40
QUEUED = 40  # push starts' database work queued behind the busy threads


def _alert(db: Database, txid: str) -> int:
    with db.write() as session:
        alert = Alert(kind="sensitive_command", severity="high", source="test",
                      user_given="alice@example.com", title="flurb -export", description="",
                      status="awaiting_2fa", duo_txid=txid, details={})  # fmt: skip
        session.add(alert)
        session.flush()
        return alert.id


def test_a_verdict_is_applied_while_push_starts_fill_the_thread_pool(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("the verdict lane is SQLite's: PostgreSQL measured faster on the default pool")
    with FakeDuo(ikey=IKEY, skey=SKEY) as fd:
        fd.enroll("alice")
        cfg = DuoConfig.model_validate({"ikey": IKEY, "skey": SKEY, "api_host": fd.api_host,
                                        "ca_certs": fd.ca_path})  # fmt: skip
        verifier = DuoVerifier(cfg)
        settings = Settings()
        handlers = ConversationHandlers(db=db, settings=settings,
                                        kinds=load_kinds(settings.alerts.dir), slack=None,
                                        verifier=verifier, wake=lambda *_: None)  # fmt: skip
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

    def writer(name: str, priority: bool) -> None:
        lock.acquire(priority)
        order.append(name)
        time.sleep(0.01)
        lock.release()

    ordinary = [threading.Thread(target=writer, args=(f"push{i}", False)) for i in range(10)]
    for t in ordinary:
        t.start()
    time.sleep(0.2)  # all ten are waiting for the lock
    verdict = threading.Thread(target=writer, args=("verdict", True))
    verdict.start()
    time.sleep(0.2)
    lock.release()
    for t in [*ordinary, verdict]:
        t.join(10)
    assert order[0] == "verdict"
    assert sorted(order[1:]) == sorted(f"push{i}" for i in range(10))


def test_priority_writes_on_a_database_go_first(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL has no process-wide writer lock; its rows lock on their own")
    alert_id = _alert(db, "tx-1")
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with db.write():
            holding.set()
            release.wait(10)

    def write(name: str, priority: bool) -> None:
        with db.write(priority=priority) as session:
            session.execute(update(Alert).where(Alert.id == alert_id).values(title=name))
            order.append(name)

    first = threading.Thread(target=holder)
    first.start()
    holding.wait(10)
    others = [threading.Thread(target=write, args=(f"push{i}", False)) for i in range(5)]
    for t in others:
        t.start()
    time.sleep(0.2)
    urgent = threading.Thread(target=write, args=("verdict", True))
    urgent.start()
    time.sleep(0.2)
    release.set()
    for t in [first, *others, urgent]:
        t.join(10)
    assert order[0] == "verdict" and len(order) == 6


def test_a_held_effect_is_claimed_before_queued_writes(db: Database) -> None:
    """A push's poll is claimed before the burst's queued writes: until it is, nothing
    listens for the person's answer (SQLite; PostgreSQL claims with SKIP LOCKED anyway)."""
    if not db.is_sqlite:
        pytest.skip("PostgreSQL has no process-wide writer lock")
    with db.write() as session:
        enqueue(session, effect="poll_duo", alert_id=None, payload={"txid": "tx-1"},
                idempotency_key="poll:tx-1")  # fmt: skip
    dispatcher = Dispatcher(db, {}, held=frozenset({"poll_duo"}))
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def holder() -> None:
        with db.write():
            holding.set()
            release.wait(10)

    def write(i: int) -> None:
        with db.write() as session:
            enqueue(session, effect="update_dm", alert_id=None, payload={"i": i},
                    idempotency_key=f"queued:{i}")  # fmt: skip
            order.append(f"push{i}")

    def claim() -> None:
        jobs = dispatcher._claim(10, "poll_duo")
        order.append(f"claimed {[job.payload['txid'] for job in jobs]}")

    first = threading.Thread(target=holder)
    first.start()
    holding.wait(10)
    others = [threading.Thread(target=write, args=(i,)) for i in range(5)]
    for t in others:
        t.start()
    time.sleep(0.2)
    claimer = threading.Thread(target=claim)
    claimer.start()
    time.sleep(0.2)
    release.set()
    for t in [first, *others, claimer]:
        t.join(10)
    assert order[0] == "claimed ['tx-1']" and len(order) == 6


def test_a_stream_of_priority_writes_never_stops_ordinary_writers() -> None:
    lock = WriteLock(burst=4)
    order: list[str] = []
    lock.acquire()

    def writer(name: str, priority: bool) -> None:
        lock.acquire(priority)
        order.append(name)
        time.sleep(0.01)
        lock.release()

    ordinary = threading.Thread(target=writer, args=("push", False))
    ordinary.start()
    time.sleep(0.2)
    urgent = [threading.Thread(target=writer, args=(f"verdict{i}", True)) for i in range(10)]
    for t in urgent:
        t.start()
    time.sleep(0.3)
    lock.release()
    for t in [ordinary, *urgent]:
        t.join(10)
    assert len(order) == 11
    assert order.index("push") == 4  # four verdicts first, then the waiting push start
