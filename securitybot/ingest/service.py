"""Turning a validated payload into a stored, pending alert (plus its audit row and first job)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from starlette.concurrency import run_in_threadpool

from securitybot import metrics
from securitybot.config import PolicyConfig
from securitybot.ingest.schema import AlertIn, audit_subject
from securitybot.kinds import KindRegistry
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert, utcnow
from securitybot.store.outage import is_unavailable
from securitybot.store.outbox import enqueue_many

# The first job of every alert: find the Slack user and start the conversation.
START_EFFECT = "start_conversation"


@dataclass(frozen=True)
class IngestResult:
    # A new alert comes back as a plain namespace of its stored values: building a full ORM
    # object per request costs more than the insert itself on the ingest hot path.
    alert: Alert | SimpleNamespace
    created: bool


def frozen_policy(kind_name: str, kinds: KindRegistry, policy: PolicyConfig) -> dict[str, Any]:
    kind = kinds.get(kind_name)
    return {
        "ack_timeout": kind.ack_timeout or policy.ack_timeout,
        "duo_timeout": policy.duo_timeout,
        "always_escalate": kind.always_escalate,
        "allow_snooze": kind.allow_snooze,
        "snooze_scope": list(kind.snooze_scope),
    }


def _values(
    payload: AlertIn, source: str, kinds: KindRegistry, policy: PolicyConfig, now: datetime
) -> dict[str, Any]:
    kind_name = payload.kind if payload.kind and payload.kind in kinds else "default"
    kind = kinds.get(kind_name)
    details = payload.details
    if payload.kind and payload.kind != kind_name:
        # Keep what the tool said so the team can add the kind later.
        details = {**details, "requested_kind": payload.kind}
    return {
        "kind": kind_name,
        "severity": kind.severity.value,
        "source": source,
        "dedup_key": payload.dedup_key,
        "user_given": payload.user,
        "title": payload.title,
        "description": payload.description,
        "details": details,
        "status": "new",
        "occurred_at": payload.occurred_at,
        "policy": frozen_policy(kind_name, kinds, policy),
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


# Columns a fresh alert has not set yet, so to_public() sees the same shape as for stored rows.
_BLANK = dict.fromkeys(
    ("user_id", "outcome", "escalation_reason", "respond_by", "user_answer", "user_comment",
     "duo_result", "claimed_by", "suppression_id")
)  # fmt: skip


@functools.lru_cache(maxsize=1024)
def _ingested(source: str, kind: str) -> Any:
    return metrics.ALERTS_INGESTED.labels(source, kind)


def ingest_batch(
    db: Database,
    items: Sequence[tuple[AlertIn, str]],
    *,
    kinds: KindRegistry,
    policy: PolicyConfig,
) -> list[IngestResult]:
    """Store alerts, each with its audit row and first outbox job, in ONE transaction.

    The same ``(source, dedup_key)`` returns the stored alert instead (no second DM later).
    One commit for many alerts is what lets ingest keep up with bursts (group commit).
    """
    now = utcnow()
    rows = [_values(p, src, kinds, policy, now) for p, src in items]
    results: list[IngestResult] = []
    audits: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    with db.write() as session:
        for values, new_id in zip(rows, alert_store.insert_alerts_once(session, rows), strict=True):
            if new_id is None:
                existing = alert_store.find_by_dedup(session, values["source"], values["dedup_key"])
                assert existing is not None  # only the (source, dedup_key) constraint conflicts
                results.append(IngestResult(existing, created=False))
                continue
            audits.append(
                {
                    "alert_id": new_id,
                    "actor": f"source:{values['source']}",
                    "action": "alert.ingested",
                    "from_status": None,
                    "to_status": "new",
                    "details": {"kind": values["kind"], "dedup_key": values["dedup_key"]},
                    "org": None,
                    "subject_user": audit_subject(values["user_given"]),
                    "created_at": now,
                }
            )
            jobs.append(
                {"effect": START_EFFECT, "alert_id": new_id, "idempotency_key": f"start:{new_id}"}
            )
            results.append(IngestResult(SimpleNamespace(**_BLANK, **values, id=new_id), True))
            _ingested(values["source"], values["kind"]).inc()
        alert_store.audit_many(session, audits)
        enqueue_many(session, jobs)
    return results


def ingest_alert(
    db: Database, payload: AlertIn, *, source: str, kinds: KindRegistry, policy: PolicyConfig
) -> IngestResult:
    return ingest_batch(db, [(payload, source)], kinds=kinds, policy=policy)[0]


# One request's alerts: stored together or not at all.
_Unit = tuple[list[tuple[AlertIn, str]], "asyncio.Future[list[IngestResult]]"]


class GroupCommitter:
    """Collects concurrent ingest requests and commits them together from one writer.

    Each request still gets its own answer after its rows are durably committed; if a batch
    fails, its requests are retried one by one so one bad row cannot fail its neighbours. A
    request (a webhook's several alerts) is never split: answered 500, it has stored nothing.
    """

    def __init__(
        self,
        db: Database,
        kinds: KindRegistry,
        policy: PolicyConfig,
        max_batch: int = 256,
        writers: int | None = None,
    ) -> None:
        self._db, self._kinds, self._policy, self._max = db, kinds, policy, max_batch
        # PostgreSQL takes concurrent writers: while one batch waits for its commit (a network
        # round trip and a WAL flush) the next is already being written. SQLite has one writer.
        self._writers = writers or (1 if db.is_sqlite else 2)
        self._queue: asyncio.Queue[_Unit] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def submit(self, payload: AlertIn, source: str) -> IngestResult:
        return (await self.submit_many([payload], source))[0]

    async def submit_many(self, payloads: Sequence[AlertIn], source: str) -> list[IngestResult]:
        """Store ``payloads`` in one transaction (with other requests' alerts, or alone)."""
        if not payloads:
            return []
        if not self._tasks or any(t.done() for t in self._tasks):
            for t in self._tasks:
                t.cancel()
            self._queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._run()) for _ in range(self._writers)]
        assert self._queue is not None
        fut: asyncio.Future[list[IngestResult]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(([(p, source) for p in payloads], fut))
        return await fut

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            size = len(batch[0][0])
            while size < self._max and not queue.empty():
                batch.append(queue.get_nowait())
                size += len(batch[-1][0])
            await self._commit(batch)

    async def _commit(self, batch: list[_Unit], *, retry_lost: bool = True) -> None:
        items = [item for unit_items, _ in batch for item in unit_items]
        try:
            results = await run_in_threadpool(
                ingest_batch, self._db, items, kinds=self._kinds, policy=self._policy
            )
        except Exception as exc:
            if is_unavailable(exc) and retry_lost:
                # A connection killed under the batch: the pool has replaced it; once more.
                await self._commit(batch, retry_lost=False)
                return
            if len(batch) == 1 or is_unavailable(exc):
                # One request, or a database that is down for every one of them: retrying
                # each alone would only multiply the wait (503 for all, they will retry).
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                return
            for one in batch:
                await self._commit([one])
            return
        start = 0
        for unit_items, fut in batch:
            if not fut.done():
                fut.set_result(results[start : start + len(unit_items)])
            start += len(unit_items)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
