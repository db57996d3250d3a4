"""``securitybot aer worker``: detection on JetStream partitions, past one process.

Each partition (``<subject>.<n>``) is held by one worker at a time through a lease row in SQL
(:mod:`securitybot.aer.partitions`). Taking a partition, a worker rebuilds the state of that
partition's orgs from SQL, then (re)creates the partition's durable pull consumer at the
position committed in SQL, so messages a dead worker had fetched but not committed are read
again, in order. A batch's counters, anomalies, decisions, profiles and the new position are
one transaction; only then are its messages acknowledged. A redelivered message at or below
the committed position is acknowledged and skipped, so nothing is counted or decided twice.

A message is acted on only if the API signed it (:func:`securitybot.aer.mac.check_mac`)
and it decodes to valid events; any other becomes a dead letter in the same transaction
(:mod:`securitybot.aer.deadletters`) and the partition carries on past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from securitybot.aer import deadletters, partitions, store
from securitybot.aer.deadletters import DeadLetter, RateLimitedLog
from securitybot.aer.events import ActivityEvent
from securitybot.aer.mac import check_mac, signing_keys
from securitybot.aer.metrics import PARTITION_LAG
from securitybot.aer.natsconn import connect, warn_without_credentials
from securitybot.aer.reference_data import TorList
from securitybot.aer.rules import Rules, load_rules
from securitybot.aer.service import AerService
from securitybot.aer.stream import Invalid, Undecodable, decode, ensure_stream, partition, subject
from securitybot.config import AerStream, Settings
from securitybot.store.db import Database

logger = logging.getLogger(__name__)
FETCH_WAIT = 1.0
# Lease rounds: at least this often, so a new worker gets its share promptly whatever the lease.
TICK = 1.0
# Messages JetStream stored this close together are judged against one "now".
_SAME_MOMENT = timedelta(minutes=1)


def consumer_name(cfg: AerStream, part: int) -> str:
    return f"aer-worker-{part}"


@dataclass(frozen=True)
class Shared:
    """Loaded once per worker process, not once per partition taken."""

    rules: Rules
    tor: TorList
    keys: list[bytes]
    dead_log: RateLimitedLog


class PartitionRunner:
    """Consumes one partition while this worker holds its lease."""

    def __init__(
        self, part: int, settings: Settings, db: Database, nc: Any, js: Any, me: str,
        shared: Shared,
    ) -> None:  # fmt: skip
        assert settings.aer.stream is not None
        self.part, self.settings, self.db, self.me = part, settings, db, me
        self.nc, self.js = nc, js  # the connection (dead letters) and its JetStream context
        self.shared = shared
        self.cfg = settings.aer.stream
        self.service = AerService(settings.aer, db, rules=shared.rules, tor=shared.tor)
        self.last = 0
        self.processed = 0
        self._stopping = False
        self.task: asyncio.Task[None] | None = None

    def _mine(self, org: str) -> bool:
        return partition(org, self.cfg.partitions) == self.part

    async def start(self) -> None:
        from nats.js import api
        from nats.js.errors import NotFoundError

        with self.db.read() as session:
            self.last = partitions.position(session, self.cfg.stream, self.part)
        await asyncio.to_thread(self.service.load_state, None, self._mine)
        name = consumer_name(self.cfg, self.part)
        with contextlib.suppress(NotFoundError):
            await self.js.delete_consumer(self.cfg.stream, name)
        start = (
            {"deliver_policy": api.DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": self.last + 1}
            if self.last
            else {"deliver_policy": api.DeliverPolicy.ALL}
        )
        await self.js.add_consumer(
            self.cfg.stream,
            api.ConsumerConfig(
                durable_name=name, filter_subject=subject(self.cfg, self.part),
                ack_policy=api.AckPolicy.ALL, ack_wait=60.0, max_deliver=-1,
                max_ack_pending=self.cfg.batch * 2, **start,
            ),
        )  # fmt: skip
        self.sub = await self.js.pull_subscribe_bind(durable=name, stream=self.cfg.stream)
        self.task = asyncio.create_task(self._run(), name=f"aer-partition-{self.part}")
        logger.info("AER worker %s took partition %s at sequence %s", self.me, self.part, self.last)

    async def stop(self) -> None:
        """Finish the batch in hand, then stop consuming."""
        self._stopping = True
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        with contextlib.suppress(Exception):
            await self.sub.unsubscribe()
        with contextlib.suppress(KeyError):  # another worker reports it from now on
            PARTITION_LAG.remove(str(self.part))

    async def _run(self) -> None:
        every = self.settings.aer.sync_interval  # 0: off
        next_reload = time.monotonic() + every
        while not self._stopping:
            try:
                msgs = await self.sub.fetch(self.cfg.batch, timeout=FETCH_WAIT)
            except TimeoutError:  # nothing new (nats-py raises asyncio's, the same class in 3.11)
                msgs = []
            # What JetStream still holds for this partition after the batch in hand.
            PARTITION_LAG.labels(str(self.part)).set(msgs[-1].metadata.num_pending if msgs else 0)
            if msgs:
                dead = await asyncio.to_thread(self._commit, msgs)
                await msgs[-1].ack()  # AckPolicy.ALL: acknowledges the whole batch
                await self._announce(dead)
            if every and time.monotonic() >= next_reload:  # baselines or Tor list changed
                await asyncio.to_thread(self.service.sync)
                next_reload = time.monotonic() + every

    def _commit(self, msgs: list[Any]) -> list[DeadLetter]:
        """Commit the new messages of a fetched batch, in groups accepted within a minute.

        The live window is measured from when JetStream stored the events, not from now: a
        backlog worked off late is still judged, and a redelivery is judged the same way. A
        backlog that spans hours is therefore committed in several transactions.
        """
        group: list[Any] = []
        dead: list[DeadLetter] = []
        for m in msgs:
            if int(m.metadata.sequence.stream) <= self.last:
                continue  # committed before a crash or handover: acknowledged, not redone
            if group and (m.metadata.timestamp - group[0].metadata.timestamp) > _SAME_MOMENT:
                dead += self._commit_group(group)
                group = []
            group.append(m)
        if group:
            dead += self._commit_group(group)
        return dead

    def _events(self, m: Any, seq: int) -> list[ActivityEvent] | DeadLetter:
        """The message's events, or why it is a dead letter (never raises on its content)."""
        headers = dict(m.headers or {})
        stored_at = m.metadata.timestamp
        reason = check_mac(self.shared.keys, m.subject, headers, m.data, stored_at,
                           self.cfg.duplicate_window)  # fmt: skip
        detail = {
            "missing_mac": "no Securitybot-Mac header: not published by the API",
            "bad_mac": "Securitybot-Mac does not match signing_key or signing_key_previous",
            "expired_mac": "signed longer than duplicate_window before JetStream stored it",
        }.get(reason or "", "")
        if reason is None:
            try:
                return decode(m.data)
            except Undecodable as exc:
                reason, detail = "undecodable", str(exc)
            except Invalid as exc:
                reason, detail = "invalid", str(exc)
        return DeadLetter(self.cfg.stream, seq, self.part, m.subject, reason, detail, headers,
                          bytes(m.data), stored_at)  # fmt: skip

    def _commit_group(self, msgs: list[Any]) -> list[DeadLetter]:
        events: list[ActivityEvent] = []
        refs: list[str] = []
        dead: list[DeadLetter] = []
        for m in msgs:
            seq = int(m.metadata.sequence.stream)
            batch = self._events(m, seq)
            if isinstance(batch, DeadLetter):
                dead.append(batch)
                continue
            events.extend(batch)
            refs.extend(f"{self.cfg.stream}:{seq}:{i}" for i in range(len(batch)))
        old, new, svc = self.last, int(msgs[-1].metadata.sequence.stream), self.service

        def in_tx(session: Any) -> None:
            store.save_profiles(session, svc.dirty_profiles())
            deadletters.record(session, dead)
            partitions.advance(session, self.cfg.stream, self.part, self.me, old, new)

        svc.ingest(events, msgs[-1].metadata.timestamp, refs=refs, in_tx=in_tx)
        self.last = new
        self.processed += len(events)
        return dead

    async def _announce(self, dead: list[DeadLetter]) -> None:
        """Committed dead letters: to the dead-letter subject (best effort: the table is the
        record) and the log, at most one line per reason a minute."""
        for d in dead:
            self.shared.dead_log.note(d)
            headers = {"Securitybot-Dead-Reason": d.reason, "Securitybot-Dead-Subject": d.subject,
                       "Securitybot-Dead-Seq": str(d.seq)}  # fmt: skip
            with contextlib.suppress(Exception):
                await self.nc.publish(f"{self.cfg.dead_letters}.{self.part}", d.data,
                                      headers=headers)  # fmt: skip


class Worker:
    """Holds a fair share of the partitions and runs a :class:`PartitionRunner` for each."""

    def __init__(self, settings: Settings, db: Database, name: str | None = None) -> None:
        assert settings.aer.stream is not None, "aer.stream is not configured"
        self.settings, self.db, self.cfg = settings, db, settings.aer.stream
        self.me = name or f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.runners: dict[int, PartitionRunner] = {}
        aer = settings.aer
        tor = TorList.from_file(aer.tor_list) if aer.tor_list else TorList()
        self.shared = Shared(load_rules(aer.rules_path), tor, signing_keys(self.cfg),
                             RateLimitedLog())  # fmt: skip
        self.stopping = asyncio.Event()

    def _claim(self) -> partitions.Claim:
        with self.db.write() as session:
            partitions.ensure_partitions(session, self.cfg.stream, self.cfg.partitions)
        with self.db.write() as session:
            return partitions.claim(
                session, self.cfg.stream, self.me, self.cfg.partitions,
                _now(), self.cfg.lease,
            )  # fmt: skip

    async def run(self) -> None:
        warn_without_credentials(self.cfg, "aer worker")
        nc = await connect(self.cfg, reconnect=True)
        js = nc.jetstream(timeout=10)
        await ensure_stream(js, self.cfg)
        logger.info("AER worker %s consuming stream %s", self.me, self.cfg.stream)
        try:
            while not self.stopping.is_set():
                try:
                    await self._tick(nc, js)
                except Exception:  # database or NATS hiccup: leases are retried next tick
                    logger.exception("AER worker %s: lease round failed", self.me)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), min(self.cfg.lease / 3, TICK))
        finally:
            await asyncio.gather(*(r.stop() for r in self.runners.values()))
            with self.db.write() as session:
                partitions.leave(session, self.cfg.stream, self.me)
            await nc.close()

    async def _tick(self, nc: Any, js: Any) -> None:
        claim = await asyncio.to_thread(self._claim)
        # A runner that failed (lease lost, database error) is restarted from SQL next tick.
        for part, runner in list(self.runners.items()):
            done = runner.task is not None and runner.task.done()
            if part not in claim.owned or part in claim.surplus or done:
                exc = runner.task.exception() if done and runner.task is not None else None
                if exc is not None:
                    logger.warning("AER partition %s stopped, restarting from SQL: %r", part, exc,
                                   exc_info=exc)  # fmt: skip
                await runner.stop()
                del self.runners[part]
        if claim.surplus:
            with self.db.write() as session:
                partitions.release(session, self.cfg.stream, self.me, claim.surplus)
        for part in sorted(claim.owned - claim.surplus - set(self.runners)):
            runner = PartitionRunner(part, self.settings, self.db, nc, js, self.me, self.shared)
            try:
                await runner.start()
            except Exception:  # still leased to us: the next tick tries again
                logger.exception("AER worker %s could not start partition %s", self.me, part)
                continue
            self.runners[part] = runner


def _now() -> Any:
    from securitybot.store.models import utcnow

    return utcnow()


def run_worker(
    settings: Settings, db: Database, metrics_port: int = 0, metrics_host: str = "0.0.0.0"
) -> None:
    """Run until SIGTERM or SIGINT; then hand the partitions back at once.

    With ``metrics_port``, the worker serves its own ``/metrics`` (a worker has no HTTP API).
    """
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, metrics_host)

    async def main() -> None:
        worker = Worker(settings, db)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stopping.set)
        await worker.run()

    asyncio.run(main())
