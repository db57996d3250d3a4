"""The outbox dispatcher's state and its database calls (claim, renew, record, release),
each run on the dispatcher's own threads. :class:`~securitybot.outbox.dispatcher.Dispatcher`
builds on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from securitybot.outbox import leases
from securitybot.outbox.jobs import BatchHandler, Handler, Job, Outcome
from securitybot.outbox.turns import AlertTurns
from securitybot.store.db import Database


class DispatchState:
    """What the dispatcher holds: its handlers, its claim statements, the wake-up events, the
    jobs in flight and the outcomes waiting to be recorded; and the calls on the database."""

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
