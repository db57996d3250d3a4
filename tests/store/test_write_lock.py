"""SQLite's in-process writer queue while another process keeps the file locked: a writer
gives up with SQLite's own error instead of queueing behind every writer ahead of it, each of
which spends the whole busy_timeout before failing; while the database is up, writers queue
as long as it takes."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from securitybot.store.outage import Outage, is_unavailable
from securitybot.store.write_lock import WriteLock


def _queued(lock: WriteLock, priority: bool = False) -> tuple[threading.Thread, list[object]]:
    """A writer queued on ``lock`` in a thread; its outcome lands in the list."""
    outcome: list[object] = []

    def take() -> None:
        try:
            lock.acquire(priority)
        except sqlite3.OperationalError as exc:
            outcome.append(exc)
        else:
            outcome.append("acquired")
            lock.release()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.parametrize("priority", [False, True])
def test_a_writer_queued_while_the_database_is_down_gives_up_as_locked(priority: bool) -> None:
    down = Outage()
    down.failed(sqlite3.OperationalError("database is locked"))
    lock = WriteLock(outage=down, patience=0.2)
    lock.acquire()  # a sweep's write, itself waiting out busy_timeout on the locked file
    thread, outcome = _queued(lock, priority)
    thread.join(timeout=30)
    assert not thread.is_alive(), "the queued writer waited for the one ahead of it"
    [refused] = outcome
    assert isinstance(refused, sqlite3.OperationalError) and is_unavailable(refused)
    assert "database is locked" in str(refused)  # the 503's database_unavailable cause
    # The lock is intact: the writer ahead finishes, the next one goes at once.
    lock.release()
    down.worked()
    thread, outcome = _queued(lock)
    thread.join(timeout=30)
    assert outcome == ["acquired"]


def test_while_the_database_is_up_a_queued_writer_waits_its_turn() -> None:
    up = Outage()
    lock = WriteLock(outage=up, patience=0.05)
    lock.acquire()
    thread, outcome = _queued(lock)
    thread.join(timeout=1.0)  # twenty times its patience: it is still queued, not refused
    assert thread.is_alive() and outcome == []
    lock.release()
    thread.join(timeout=30)
    assert outcome == ["acquired"]


def test_a_writer_that_gives_up_does_not_strand_the_ones_behind_it() -> None:
    """The database comes back as one queued writer gives up: the others still get their turn
    (the wake-up it took is passed on)."""
    down = Outage()
    down.failed(sqlite3.OperationalError("database is locked"))
    lock = WriteLock(outage=down, patience=0.2)
    lock.acquire()
    first = _queued(lock)
    first[0].join(timeout=30)
    down.worked()  # back: the rest queue as long as it takes
    rest = [_queued(lock) for _ in range(5)]
    lock.release()
    for thread, outcome in rest:
        thread.join(timeout=30)
        assert outcome == ["acquired"]
    assert isinstance(first[1][0], sqlite3.OperationalError)
