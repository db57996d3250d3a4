"""The outbox dispatcher: claims due rows, runs their handlers, retries with backoff.

Rows are claimed with a lease (``locked_until``). On PostgreSQL the claim uses
``FOR UPDATE SKIP LOCKED`` so several replicas share the work without waiting on each other;
SQLite runs one process, where the same UPDATE ... RETURNING is atomic on its own. A process that
dies mid-delivery leaves a lease that simply expires (SQLite: released at start-up), and the row
is delivered again. Such a run may follow one that reached the outside world without its
outcome being recorded (a crash, a commit lost with its connection): a handler that posts marks
``delivery_started_at`` first, so a later run knows to look for that post before posting again
(``Job.delivery_started``). ``claims`` counts claims, for the same diagnosis by people.

Effects with a batch handler run in lanes (issue #15): each lane claims only its effect, up to
``batch`` rows at a time, and hands them to the handler together, so a burst costs a few
transactions per batch instead of a few per job. A lane claims again as soon as its batch is
done, so batches grow with the backlog and stay small (low latency) when there is none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from securitybot.outbox import leases
from securitybot.outbox.jobs import (
    BatchHandler,
    Done,
    GiveUp,
    Handler,
    Job,
    Outcome,
    Recorded,
    RetryAt,
    backoff,
)
from securitybot.outbox.turns import AlertTurns
from securitybot.store.db import Database
from securitybot.store.models import Outbox, utcnow

__all__ = ["BatchHandler", "Dispatcher", "Done", "GiveUp", "Handler", "Job", "Outcome",
           "Recorded", "RetryAt", "backoff"]  # fmt: skip

logger = logging.getLogger(__name__)
OUTBOX = cast(Table, Outbox.__table__)

# Recording an outcome is retried this often (0.1, 0.2, 0.4 s apart) before the lease decides.
RECORD_TRIES = 4


class Dispatcher:
    """Claims due rows continuously (no batch barrier) up to ``concurrency`` jobs in flight.

    Jobs of one alert run one after another in id order (post the DM before updating it);
    different alerts run concurrently. Leases are short and renewed while a job runs, so work
    held by a process that died is picked up again within one lease. Effects named in
    ``unordered`` skip that queue: a long-poll (Duo's auth_status holds for up to a minute)
    must not hold back the same alert's escalation, and its result goes through the guarded
    state machine anyway. Effects named in ``held`` wait on someone else (a push waiting on a
    phone in Duo's long-poll) and cost a coroutine while they do: they do not count against
    ``concurrency``, so thousands of people slow to answer never hold back other work.
    """

    def __init__(
        self,
        db: Database,
        handlers: dict[str, Handler],
        *,
        batch: int = 100,
        concurrency: int = 64,
        lease: float = 10.0,
        idle_poll: float = 0.5,
        unordered: frozenset[str] = frozenset(),
        held: frozenset[str] = frozenset(),
        batch_handlers: dict[str, BatchHandler] | None = None,
        lanes: int = 2,
    ) -> None:
        self.db = db
        self.handlers = handlers
        self.batch_handlers = dict(batch_handlers or {})
        self.lanes = lanes
        # Batch effects and held effects are claimed by their own loops, never the general one.
        own_loops = frozenset(self.batch_handlers) | held
        self._skip = sorted(own_loops)
        self._claims: dict[str | None, Any] = {
            effect: leases.claim_statement(postgres=db.is_postgres, only=effect, skip=own_loops)
            for effect in [None, *self._skip]
        }
        # Every waiter gets its own event (the general loop; the lanes of an effect share
        # one): a wake-up must reach all it names, and each clears only its own before claiming.
        self._slot_free = asyncio.Event()  # the general loop's wake-up
        self._lane_wakes: dict[str, asyncio.Event] = {}
        self._lane_tasks: list[asyncio.Task[None]] = []
        self.batch = batch
        self.concurrency = concurrency
        self.lease = timedelta(seconds=lease)
        self.idle_poll = idle_poll
        self.unordered = unordered
        self.held = held
        self._held_ids: set[int] = set()  # in-flight jobs of a held effect
        self._task: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._recorder: asyncio.Task[None] | None = None
        self._outcomes: list[tuple[Job, Outcome, asyncio.Future[None]]] = []
        self._outcome_ready = asyncio.Event()
        self._stopping = False
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._turns = AlertTurns()
        # Claims and records get their own threads so a busy handler pool cannot starve them.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="outbox")

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # -- claiming and recording ------------------------------------------------------------
    def _claim(self, limit: int, effect: str | None = None) -> list[Job]:
        values = leases.params(self.db, self.lease, limit=limit)
        if effect is not None:
            values["only"] = effect
        else:
            values.update({f"skip{i}": name for i, name in enumerate(self._skip)})
        # A held effect's claim goes before queued writes (SQLite): a push is on someone's
        # phone and nothing listens for their answer until its poll is claimed.
        urgent = effect is not None and effect in self.held
        return leases.claim(self.db, self._claims[effect], values, priority=urgent)

    def _renew(self, ids: list[int]) -> None:
        leases.renew(self.db, ids, self.lease)

    def release_orphaned_leases(self) -> None:
        leases.release_orphaned(self.db)

    def _record_many(self, items: list[tuple[Job, Outcome]]) -> None:
        leases.record_many(self.db, items)

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

    def notify(self, effects: Iterable[str] | None = None) -> None:
        """New work was written: wake whoever claims ``effects`` (None: everyone).

        Naming the effects matters under load: every ingested alert is new work, and a
        wake-up for all made the general loop and the other lanes claim and find nothing."""
        if effects is None:
            events = {self._slot_free, *self._lane_wakes.values()}
        else:
            events = {self._lane_wakes.get(effect, self._slot_free) for effect in effects}
        for event in events:
            event.set()

    async def _lane(self, effect: str, wake: asyncio.Event, turn: asyncio.Lock) -> None:
        """Claim up to ``batch`` jobs of ``effect``, run them as one batch, repeat.

        The lanes of one effect take turns at claiming: one waits for work while the others
        run their batches, so a wake-up costs one claim per effect, not one per lane."""
        while not self._stopping:
            async with turn:
                if self._stopping:  # it stopped while this lane waited for its turn
                    break
                wake.clear()  # before claiming: work written meanwhile sets it again
                try:
                    jobs = await self._db(self._claim, self.batch, effect)
                except Exception:
                    logger.exception("outbox claim of %s failed; retrying shortly", effect)
                    await asyncio.sleep(1.0)
                    continue
                jobs = [job for job in jobs if job.id not in self._inflight]
                if not jobs:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), timeout=self.idle_poll)
                    continue
            task = asyncio.current_task()
            assert task is not None
            for job in jobs:
                self._inflight[job.id] = task  # renewed with the others while it runs
            try:
                await self._run_batch(effect, jobs)
            finally:
                for job in jobs:
                    self._inflight.pop(job.id, None)

    async def _held_loop(self, effect: str, wake: asyncio.Event) -> None:
        """Claim due jobs of a held effect as soon as they are written, however busy the
        general loop is: a push's poll must be waiting in Duo before its person approves,
        not queued behind a burst of other people's pushes."""
        while not self._stopping:
            wake.clear()  # before claiming: work written meanwhile sets it again
            try:
                jobs = await self._db(self._claim, self.batch, effect)
            except Exception:
                logger.exception("outbox claim of %s failed; retrying shortly", effect)
                await asyncio.sleep(1.0)
                continue
            self._spawn(jobs)
            if len(jobs) < self.batch and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=self.idle_poll)

    async def _loop(self, wake: asyncio.Event) -> None:
        while not self._stopping:
            # Clear before claiming: work written while we claim sets it again, so a wake-up
            # can never fall between "found nothing" and "start waiting".
            wake.clear()
            singles = (
                len(self._inflight)
                - len(self._held_ids)
                - sum(1 for t in self._inflight.values() if t in self._lane_tasks)
            )
            free = self.concurrency - singles
            claimed = 0
            if free > 0:
                try:
                    jobs = await self._db(self._claim, min(self.batch, free))
                except Exception:
                    logger.exception("outbox claim failed; retrying shortly")
                    await asyncio.sleep(1.0)
                    continue
                self._spawn(jobs)
                claimed = len(jobs)
            if (claimed == 0 or free <= claimed) and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=self.idle_poll)

    async def _renew_loop(self) -> None:
        # Until stop() cancels it: jobs still running while the dispatcher drains keep their
        # leases, or another replica would take them over and deliver them a second time.
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._db(self._renew, list(self._inflight))
            except Exception:
                logger.exception("outbox lease renewal failed")

    async def start(self) -> None:
        self._stopping = False
        await self._db(self.release_orphaned_leases)
        loop = asyncio.get_running_loop()
        self._slot_free = asyncio.Event()
        self._lane_wakes = {effect: asyncio.Event() for effect in self._skip}
        self.notify()  # everyone looks once at start
        self._task = loop.create_task(self._loop(self._slot_free))
        self._lane_tasks = []
        for effect, wake in self._lane_wakes.items():
            if effect in self.held:
                self._lane_tasks.append(loop.create_task(self._held_loop(effect, wake)))
                continue
            turn = asyncio.Lock()
            self._lane_tasks += [
                loop.create_task(self._lane(effect, wake, turn)) for _ in range(self.lanes)
            ]
        self._renewer = loop.create_task(self._renew_loop())
        self._outcome_ready = asyncio.Event()
        self._recorder = loop.create_task(self._record_loop())

    def drain(self) -> None:
        """Claim nothing more (SIGTERM); jobs in flight go on, their leases renewed."""
        self._stopping = True
        self.notify()

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming, give jobs in flight ``timeout`` to finish and record their outcomes,
        then hand back the leases of those that did not finish, so another replica takes them
        at once instead of a lease later (their handlers marked a delivery they started, so the
        retry looks for it before posting again)."""
        self.drain()
        claimers = [t for t in (self._task, *self._lane_tasks) if t is not None]
        running = {*self._inflight.values(), *claimers}
        unfinished: list[int] = []
        if running:
            _done, pending = await asyncio.wait(running, timeout=timeout)
            unfinished = [job_id for job_id, t in self._inflight.items() if t in pending]
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)  # let them unwind (turns, finally)
        if self._renewer is not None:
            self._renewer.cancel()
        if unfinished:
            logger.warning("outbox jobs %s did not finish before shutdown; releasing their "
                           "leases", unfinished)  # fmt: skip
            try:
                await self._db(leases.release, self.db, unfinished)
            except Exception:  # they run again once their leases expire
                logger.exception("outbox jobs %s: releasing their leases failed", unfinished)
        if self._recorder is not None:
            self._recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recorder
        if self._renewer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        self._task = self._renewer = self._recorder = None
        self._lane_tasks = []
        self._pool.shutdown(wait=False)
