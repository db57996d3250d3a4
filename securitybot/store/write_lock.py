"""SQLite's process-wide writer lock: an orderly queue instead of busy-wait retries, a lane
for urgent writes, and no queueing while the file is known to be locked by someone else."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable

from securitybot.store.outage import OUTAGE, Outage

# How long a writer queues for the in-process lock while the database is known to be down (a
# file another process keeps locked) before it gives up with SQLite's own "database is
# locked". Each writer ahead of it holds the lock for the whole busy_timeout (5 s) before it
# fails, so queueing behind them all made a request's 503 take 35-45 s; the sender's own
# timeout often came first, leaving it unsure whether its alert was stored.
OUTAGE_PATIENCE = 1.0
# How often a queued writer looks at whether the database went down meanwhile.
_RECHECK = 0.25


class WriteLock:
    """SQLite's process-wide writer lock, with a lane for urgent writes.

    A ``priority`` writer (a verdict someone is waiting on: a Duo approval to resolve) goes
    before every ordinary writer still waiting, so thousands of queued push starts cannot hold
    it back; among themselves ordinary writers keep the plain lock's order (none promised).
    After ``burst`` urgent writes in a row, one ordinary writer that is waiting goes next, so a
    stream of urgent writes slows the others down but never stops them (a burst's outcomes
    must still be recorded to free its slots).

    While ``outage`` says the database is down, a writer that has queued ``patience`` seconds
    gives up (:class:`sqlite3.OperationalError`, which the HTTP edge answers 503 and the
    background loops retry later); while it is up, writers queue as long as it takes."""

    def __init__(
        self, burst: int = 4, *, outage: Outage = OUTAGE, patience: float = OUTAGE_PATIENCE
    ) -> None:
        self._mutex = threading.Lock()
        self._urgent = threading.Condition(self._mutex)
        self._ordinary = threading.Condition(self._mutex)
        self._held = False
        self._urgent_waiting = 0
        self._ordinary_waiting = 0
        self._burst = burst
        self._urgent_run = 0  # urgent grants in a row while ordinary writers waited
        self._outage, self._patience = outage, patience

    def _ordinary_turn(self) -> bool:
        return self._ordinary_waiting > 0 and self._urgent_run >= self._burst

    def _urgent_may_go(self) -> bool:
        return not self._held and not self._ordinary_turn()

    def _ordinary_may_go(self) -> bool:
        return not self._held and (not self._urgent_waiting or self._ordinary_turn())

    def acquire(self, priority: bool = False) -> None:
        with self._mutex:
            if priority:
                self._urgent_waiting += 1
                try:
                    turn = self._wait(self._urgent, self._urgent_may_go)
                finally:
                    self._urgent_waiting -= 1
            else:
                self._ordinary_waiting += 1
                try:
                    turn = self._wait(self._ordinary, self._ordinary_may_go)
                finally:
                    self._ordinary_waiting -= 1
            if not turn:
                self._pass_on()  # a wake-up this writer took is not lost
                raise sqlite3.OperationalError(
                    "database is locked (queued behind this process's writers while the "
                    "database is unavailable)"
                )
            if priority:
                self._urgent_run = self._urgent_run + 1 if self._ordinary_waiting else 0
            else:
                self._urgent_run = 0
            self._held = True

    def _wait(self, turn: threading.Condition, may_go: Callable[[], bool]) -> bool:
        """Wait (the mutex is released while waiting) until ``may_go``: True; False when the
        database is down and this writer has queued ``patience`` seconds."""
        started = time.monotonic()
        while not may_go():
            turn.wait(_RECHECK)
            if may_go():
                return True
            if self._outage.down_since is not None and (
                time.monotonic() - started >= self._patience
            ):
                return False
        return True

    def release(self) -> None:
        with self._mutex:
            self._held = False
            self._pass_on()

    def _pass_on(self) -> None:
        if self._held:
            return
        if self._urgent_waiting and not self._ordinary_turn():
            self._urgent.notify()
        else:
            self._ordinary.notify()
