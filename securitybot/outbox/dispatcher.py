"""The outbox dispatcher: claims due rows, runs their handlers, retries with backoff.

Rows are claimed with a lease (``locked_until``). On PostgreSQL the claim uses
``FOR UPDATE SKIP LOCKED`` so several replicas share the work without waiting on each other;
SQLite runs one process, where the same UPDATE ... RETURNING is atomic on its own. A process that
dies mid-delivery leaves a lease that simply expires, and the row is delivered again: handlers
are written to be idempotent for exactly that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text, update

from securitybot.store.db import Database
from securitybot.store.models import Outbox, utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    id: int
    effect: str
    alert_id: int | None
    payload: dict[str, Any]
    attempts: int
    created_at: Any  # a datetime, or text on SQLite (raw SQL skips the column type)


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class RetryAt:
    """Try again at ``when``. ``failure`` False means "not yet" (polling), not an error."""

    when: datetime
    error: str = ""
    failure: bool = True


@dataclass(frozen=True)
class GiveUp:
    error: str


Outcome = Done | RetryAt | GiveUp
Handler = Callable[[Job], Awaitable[Outcome]]


def backoff(attempt: int, *, base: float = 1.0, cap: float = 300.0) -> timedelta:
    """Exponential backoff with full jitter (attempt counts from 1)."""
    return timedelta(seconds=random.uniform(0.5, 1.0) * min(cap, base * 2 ** (attempt - 1)))


_CLAIM_PG = text(
    """
    UPDATE outbox SET locked_until = :lease
    WHERE id IN (
        SELECT id FROM outbox
        WHERE status = 'pending' AND next_attempt_at <= :now
          AND (locked_until IS NULL OR locked_until < :now)
        ORDER BY next_attempt_at, id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED)
    RETURNING id, effect, alert_id, payload, attempts, created_at
    """
)
_CLAIM_SQLITE = text(
    """
    UPDATE outbox SET locked_until = :lease
    WHERE id IN (
        SELECT id FROM outbox
        WHERE status = 'pending' AND next_attempt_at <= :now
          AND (locked_until IS NULL OR locked_until < :now)
        ORDER BY next_attempt_at, id
        LIMIT :limit)
    RETURNING id, effect, alert_id, payload, attempts, created_at
    """
)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        handlers: dict[str, Handler],
        *,
        wake: asyncio.Event | None = None,
        batch: int = 100,
        concurrency: int = 32,
        lease: float = 120.0,
        idle_poll: float = 0.5,
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.wake = wake or asyncio.Event()
        self.batch = batch
        self.lease = timedelta(seconds=lease)
        self.idle_poll = idle_poll
        self._sem = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()

    # -- claiming and recording ------------------------------------------------------------
    def _claim(self) -> list[Job]:
        now = utcnow()
        stmt = _CLAIM_PG if self.db.is_postgres else _CLAIM_SQLITE
        params: dict[str, Any] = {"now": now, "lease": now + self.lease, "limit": self.batch}
        if self.db.is_sqlite:
            # Raw SQL bypasses the UTCDateTime type: SQLite stores naive UTC text.
            fmt = "%Y-%m-%d %H:%M:%S.%f"
            params = {
                "now": now.strftime(fmt), "lease": (now + self.lease).strftime(fmt),
                "limit": self.batch,
            }  # fmt: skip
        with self.db.write() as session:
            rows = session.execute(stmt, params).all()
        jobs = []
        for r in rows:
            payload = r.payload
            if isinstance(payload, str):
                payload = json.loads(payload)
            jobs.append(Job(r.id, r.effect, r.alert_id, payload or {}, r.attempts, r.created_at))
        jobs.sort(key=lambda j: j.id)
        return jobs

    def _record(self, job: Job, outcome: Outcome) -> None:
        now = utcnow()
        values: dict[str, Any]
        if isinstance(outcome, Done):
            values = {"status": "done", "done_at": now, "locked_until": None}
        elif isinstance(outcome, GiveUp):
            values = {"status": "dead", "done_at": now, "locked_until": None,
                      "last_error": outcome.error[:2000], "attempts": job.attempts + 1}  # fmt: skip
        else:
            values = {"next_attempt_at": outcome.when, "locked_until": None}
            if outcome.failure:
                values["attempts"] = job.attempts + 1
                values["last_error"] = outcome.error[:2000]
        with self.db.write() as session:
            session.execute(update(Outbox).where(Outbox.id == job.id).values(**values))

    # -- running -----------------------------------------------------------------------------
    async def _run_job(self, job: Job) -> None:
        handler = self.handlers.get(job.effect)
        try:
            if handler is None:
                outcome: Outcome = GiveUp(f"no handler for effect {job.effect!r}")
            else:
                outcome = await handler(job)
        except Exception as exc:  # a bug in one handler must not stop the others
            logger.exception("outbox job %s (%s) failed", job.id, job.effect)
            outcome = RetryAt(utcnow() + backoff(job.attempts + 1), f"{type(exc).__name__}: {exc}")
        if isinstance(outcome, GiveUp):
            logger.error("outbox job %s (%s) gave up: %s", job.id, job.effect, outcome.error)
        await asyncio.to_thread(self._record, job, outcome)

    async def _run_alert_jobs(self, jobs: list[Job]) -> None:
        # Effects of one alert run in order (post the DM before updating it); different alerts
        # run concurrently.
        async with self._sem:
            for job in jobs:
                await self._run_job(job)

    async def run_once(self) -> int:
        jobs = await asyncio.to_thread(self._claim)
        if not jobs:
            return 0
        groups: dict[object, list[Job]] = {}
        for job in jobs:
            groups.setdefault(
                job.alert_id if job.alert_id is not None else ("job", job.id), []
            ).append(job)
        await asyncio.gather(*(self._run_alert_jobs(g) for g in groups.values()))
        return len(jobs)

    async def _loop(self) -> None:
        while not self._stopping:
            # Clear before claiming: work written while we claim sets it again, so a wake-up
            # can never fall between "found nothing" and "start waiting".
            self.wake.clear()
            try:
                n = await self.run_once()
            except Exception:
                logger.exception("outbox dispatch round failed; retrying shortly")
                n = 0
                await asyncio.sleep(1.0)
            if n == 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=self.idle_poll)

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the round in flight (graceful SIGTERM), then stop."""
        self._stopping = True
        self.wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:
                self._task.cancel()
            self._task = None
