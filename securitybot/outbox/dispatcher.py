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
from collections.abc import Iterable

from securitybot.outbox import leases
from securitybot.outbox.job_runner import JobRunner
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

__all__ = ["BatchHandler", "Dispatcher", "Done", "GiveUp", "Handler", "Job", "Outcome",
           "Recorded", "RetryAt", "backoff"]  # fmt: skip

logger = logging.getLogger(__name__)


class Dispatcher(JobRunner):
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
