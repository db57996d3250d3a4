"""Running claimed jobs, each alert's in id order, and recording their outcomes: the outcomes
that finish while one transaction commits are recorded together in the next, with a few quick
retries before the lease decides."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import DBAPIError
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from securitybot.outbox.dispatch_state import DispatchState
from securitybot.outbox.jobs import GiveUp, Job, Outcome, Recorded, RetryAt, backoff
from securitybot.store.models import utcnow

# The dispatcher's log lines keep the logger name they always had.
logger = logging.getLogger("securitybot.outbox.dispatcher")


# Recording an outcome is retried this often (0.1, 0.2, 0.4 s apart) before the lease decides.
RECORD_TRIES = 4


class JobRunner(DispatchState):
    """Runs jobs (one by one, or a batch handler's batch) and records what became of them."""

    # -- running -----------------------------------------------------------------------------
    @staticmethod
    def _failed(jobs: list[Job], exc: Exception) -> list[Outcome]:
        """What a handler's exception means for its jobs."""
        ids = [job.id for job in jobs]
        effect = jobs[0].effect if jobs else "?"
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            # The database dropped our connection (restart, failover, a killed backend):
            # the work did not fail, so retry soon without spending one of its attempts.
            logger.warning("outbox jobs %s (%s): database connection lost; retrying soon",
                           ids, effect, exc_info=exc)  # fmt: skip
            return [RetryAt(utcnow() + backoff(1), failure=False) for _ in jobs]
        logger.error("outbox jobs %s (%s) failed", ids, effect, exc_info=exc)
        error = f"{type(exc).__name__}: {exc}"
        return [RetryAt(utcnow() + backoff(job.attempts + 1), error) for job in jobs]

    async def _run_job(self, job: Job) -> None:
        handler = self.handlers.get(job.effect)
        try:
            if handler is None:
                outcome: Outcome = GiveUp(f"no handler for effect {job.effect!r}")
            else:
                outcome = await handler(job)
        except Exception as exc:  # a bug in one handler must not stop the others
            outcome = self._failed([job], exc)[0]
        if isinstance(outcome, GiveUp):
            logger.error("outbox job %s (%s) gave up: %s", job.id, job.effect, outcome.error)
        if not isinstance(outcome, Recorded):
            await self._record_outcomes([(job, outcome)])

    def adopt(self, jobs: list[Job]) -> None:
        """Jobs a running batch handler claimed itself (with ``lease``): renewed with the
        others' until ``release``."""
        task = asyncio.current_task()
        assert task is not None
        for job in jobs:
            self._inflight[job.id] = task

    async def release(self, jobs: list[Job], outcomes: list[Outcome]) -> None:
        """Record the outcomes of adopted jobs (none given: their leases simply run out) and
        stop renewing them."""
        try:
            await self._record_outcomes(
                [(job, o) for job, o in zip(jobs, outcomes, strict=False)
                 if not isinstance(o, Recorded)]
            )  # fmt: skip
        finally:
            for job in jobs:
                self._inflight.pop(job.id, None)

    async def _run_batch(self, effect: str, jobs: list[Job]) -> None:
        """One batch handler call for ``jobs``, holding each alert's turn (in id order, so two
        batches cannot wait on each other), then every outcome recorded together."""
        alerts = [job.alert_id for job in jobs if job.alert_id is not None]
        async with self._turns.hold(alerts):
            try:
                outcomes = await self.batch_handlers[effect](jobs)
                if len(outcomes) != len(jobs):
                    raise RuntimeError(f"{len(outcomes)} outcomes for {len(jobs)} jobs")
            except Exception as exc:  # a bug must not stop the lane
                outcomes = self._failed(jobs, exc)
            for job, outcome in zip(jobs, outcomes, strict=True):
                if isinstance(outcome, GiveUp):
                    logger.error("outbox job %s (%s) gave up: %s", job.id, effect, outcome.error)
            await self._record_outcomes(
                [(job, o) for job, o in zip(jobs, outcomes, strict=True)
                 if not isinstance(o, Recorded)]
            )  # fmt: skip

    async def _record_outcomes(self, items: list[tuple[Job, Outcome]]) -> None:
        """Hand the outcomes to the recorder and wait until they are recorded (or given up
        on): an alert's next job must not start before this one's outcome is stored. A batch's
        outcomes share one wait (a coroutine and a future per job cost more than the SQL)."""
        if not items:
            return
        if self._recorder is None or self._recorder.done():
            await self._record_batch(items)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outcomes.extend((job, outcome, done) for job, outcome in items)
        self._outcome_ready.set()
        await done

    async def _record_loop(self) -> None:
        """One transaction records every outcome that finished while the last one committed."""
        while True:
            await self._outcome_ready.wait()
            self._outcome_ready.clear()
            batch, self._outcomes = self._outcomes, []
            if not batch:
                continue
            try:
                await self._record_batch([(job, outcome) for job, outcome, _ in batch])
            finally:
                for _, _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def _record_batch(self, items: list[tuple[Job, Outcome]]) -> None:
        """Record with a few quick retries (a dropped connection is replaced on the next try).
        If it still fails the lease runs out and the jobs run again as retries, whose handlers
        find what this run already delivered: a lost outcome never re-sends."""
        ids = [job.id for job, _ in items]
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(RECORD_TRIES),
                wait=wait_exponential(multiplier=0.1),
                # The failure itself, not the (empty) current exception: the outage filter
                # turns a database outage into one line per interval, without a traceback.
                before_sleep=lambda state: logger.warning(
                    "outbox jobs %s: recording outcomes failed; retrying",
                    ids,
                    exc_info=state.outcome.exception() if state.outcome else None,
                ),
                reraise=True,
            ):
                with attempt:
                    await self._db(self._record_many, items)
        except Exception:
            logger.exception("outbox jobs %s: outcome not recorded; they will run "
                             "again after their lease", ids)  # fmt: skip

    async def _run_in_order(self, job: Job) -> None:
        # Nobody awaits these tasks: whatever escapes here must be logged, never left for
        # "Task exception was never retrieved".
        try:
            if job.alert_id is None or job.effect in self.unordered:
                await self._run_job(job)
                return
            async with self._turns.hold([job.alert_id]):
                await self._run_job(job)
        except Exception:
            logger.exception("outbox job %s (%s) crashed the dispatcher task", job.id, job.effect)
        finally:
            self._inflight.pop(job.id, None)
            self._held_ids.discard(job.id)
            self._slot_free.set()  # only the general loop cares

    def _spawn(self, jobs: list[Job]) -> None:
        loop = asyncio.get_running_loop()
        for job in jobs:
            if job.id in self._inflight:
                # Our own job, re-claimed because renewing its lease failed: it is still
                # running here, so a second copy would only race the first.
                continue
            if job.effect in self.held:
                self._held_ids.add(job.id)
            self._inflight[job.id] = loop.create_task(self._run_in_order(job))

    def run(self, jobs: list[Job]) -> None:
        """Run jobs their writer leased to this process (``Handover``) at once: renewed and
        recorded like claimed ones; held effects are held here too (no concurrency slot)."""
        self._spawn(jobs)
