"""The DM path's outbox handlers for a batch of jobs (issue #15): the same steps as
``ConversationHandlers.start_conversation`` and ``send_dm``, with the database work of the whole
batch in one transaction per step (``dm_batch``) and the Slack calls run side by side.

Slack calls stay bounded (``SLACK_CONCURRENCY`` at once per batch); the gateway paces every
call to Slack's tiers from the first one, so a burst is spread instead of retried in a storm.
An alert does not wait for the lookups of the rest of its batch: it is settled, and its DM
sent, as soon as its own person is known.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import select

from securitybot.domain import Event, EventType
from securitybot.flows import dm_batch
from securitybot.flows.conversation import MAX_DM_ATTEMPTS, ConversationHandlers
from securitybot.flows.dm_path import DmContext
from securitybot.flows.slack_wait import SLACK_WAIT
from securitybot.ingest.schema import as_person, no_user_note
from securitybot.outbox.jobs import (
    BatchHandler,
    Done,
    Handover,
    Job,
    Outcome,
    Recorded,
    RetryAt,
    backoff,
)
from securitybot.slack import messages
from securitybot.slack.gateway import SlackPermanentError, SlackRetryLater, SlackUser
from securitybot.slack.retry_later import retry_later
from securitybot.store.models import Alert, utcnow

logger = logging.getLogger(__name__)
SLACK_CONCURRENCY = 32
# How long the settling of a person Slack just named waits for others Slack names meanwhile
# (one transaction for those), never for the rest of the batch.
LINGER = 0.05
T = TypeVar("T")


async def _bounded(calls: list[Awaitable[T]]) -> list[T]:
    """Await ``calls`` (coroutines not yet started), at most SLACK_CONCURRENCY at a time."""
    return await asyncio.gather(*_gated(calls))


def _gated(calls: list[Awaitable[T]]) -> list[Awaitable[T]]:
    gate = asyncio.Semaphore(SLACK_CONCURRENCY)

    async def one(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    return [one(c) for c in calls]


def _unanswered(
    looking: asyncio.Future[list[Any]], waiting: list[tuple[Job, Any]]
) -> list[tuple[Job, Any, SlackUser | Exception | None]]:
    """The answers for the people whose lookups ended without one (cancelled, or killed by
    what no ``except Exception`` catches): each a failure, so their alerts escalate instead
    of waiting for an answer that cannot come."""
    ended = [] if looking.cancelled() else looking.result()
    died = next((r for r in ended if isinstance(r, BaseException)), None)
    how = f"{type(died).__name__}: {died}" if died else "cancelled"
    why = RuntimeError(f"the Slack lookup ended without an answer ({how})")
    logger.error("alerts %s: %s", [alert.id for _, alert in waiting], why)
    return [(job, alert, why) for job, alert in waiting]


@dataclass
class BatchConversation:
    h: ConversationHandlers
    # Set when a dispatcher runs these handlers: start_conversation then sends the DMs it
    # queued itself, instead of handing them to the send_dm lane.
    handover: Handover | None = None

    def handlers(self) -> dict[str, BatchHandler]:
        return {"start_conversation": self.start_conversations, "send_dm": self.send_dms}

    def _load(self, ids: list[int]) -> dict[int, Any]:
        """What the start of a conversation needs of each alert, by id (plain rows)."""
        cols = (Alert.id, Alert.status, Alert.kind, Alert.user_given, Alert.created_at)
        with self.h.db.read() as session:
            return {r.id: r for r in session.execute(select(*cols).where(Alert.id.in_(ids)))}

    async def start_conversations(self, jobs: list[Job]) -> list[Outcome]:
        h = self.h
        ids = [job.alert_id for job in jobs if job.alert_id is not None]
        alerts = await asyncio.to_thread(self._load, ids)
        outcomes: dict[int, Outcome] = {}
        asking: list[tuple[Job, Any]] = []
        events: list[tuple[int, Event]] = []
        for job in jobs:
            alert = alerts.get(job.alert_id or 0)
            if alert is None or alert.status != "new":
                outcomes[job.id] = Done()
            elif h.slack is None:
                # Nobody to ask yet: the alert waits until a start with Slack configured.
                outcomes[job.id] = RetryAt(utcnow() + SLACK_WAIT, "Slack is not configured",
                                           failure=False)  # fmt: skip
            elif as_person(alert.user_given) is None:
                # Nobody to look up (no user, or a login like "root"): the team gets it at once.
                nobody = Event(EventType.NO_USER, comment=no_user_note(alert.user_given))
                events.append((alert.id, nobody))
                outcomes[job.id] = Done()
            else:
                asking.append((job, alert))
        slack = h.slack
        # No head-of-line blocking: each alert is settled (and its DM sent) as soon as its own
        # person is known. People the directory already holds are settled together at once;
        # the others as Slack answers for them, those answering close together in one
        # transaction (a lookup waiting on Slack's tier holds up nobody else's DM).
        first: list[tuple[Job, Any, SlackUser | Exception | None]] = []
        missing: list[tuple[Job, Any]] = []
        for job, alert in asking:
            assert slack is not None
            known, user = slack.cached(alert.user_given)
            (first.append((job, alert, user)) if known else missing.append((job, alert)))
        answers: asyncio.Queue[tuple[Job, Any, SlackUser | Exception | None]] = asyncio.Queue()

        async def lookup(job: Job, alert: Any) -> None:
            assert slack is not None
            try:
                user: SlackUser | Exception | None = await slack.lookup_user(alert.user_given)
            except (SlackRetryLater, SlackPermanentError) as exc:
                user = exc
            except Exception as exc:
                # Not Slack's answer (a body that is not Slack's JSON, a bug reading it): the
                # batch must still hear of this person, or it waits for them forever. Their
                # alert escalates as a DM that failed (fail closed).
                logger.exception("alert %s: looking up its person failed", alert.id)
                user = exc
            answers.put_nowait((job, alert, user))

        # Done only once every lookup has ended (return_exceptions), so every answer that
        # will ever come is queued by then.
        looking = asyncio.gather(*_gated([lookup(j, a) for j, a in missing]),
                                 return_exceptions=True)  # fmt: skip
        sends: list[asyncio.Task[None]] = []
        unanswered = {job.id: (job, alert) for job, alert in missing}
        try:
            chunk, chunk_events = first, events
            while True:
                if chunk or chunk_events or not unanswered:
                    sends += await self._settle_some(jobs, chunk, chunk_events, outcomes)
                if not unanswered:
                    break
                chunk, chunk_events = await self._next_answers(answers, len(unanswered),
                                                               looking), []  # fmt: skip
                if not chunk:  # the lookups ended without answering for everyone
                    chunk = _unanswered(looking, list(unanswered.values()))
                for job, _, _ in chunk:
                    del unanswered[job.id]
        finally:
            if not looking.done():
                looking.cancel()
            await asyncio.gather(looking, *sends, return_exceptions=True)
        return [outcomes[job.id] for job in jobs]

    @staticmethod
    async def _next_answers(
        answers: asyncio.Queue[tuple[Job, Any, SlackUser | Exception | None]], left: int,
        looking: asyncio.Future[Any],
    ) -> list[tuple[Job, Any, SlackUser | Exception | None]]:  # fmt: skip
        """The next lookup answer, with those arriving within ``LINGER`` of it; none once
        ``looking`` (the lookups) has ended with none left to take."""
        got: list[tuple[Job, Any, SlackUser | Exception | None]] = []
        get = asyncio.ensure_future(answers.get())
        try:
            await asyncio.wait({get, looking}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            taken = get.done()
            if not taken:  # a get cancelled before it ran leaves its item in the queue
                get.cancel()
        if taken:
            got.append(get.result())
        else:
            # Every lookup queues its answer before it ends: what is left is in the queue.
            while len(got) < left and not answers.empty():
                got.append(answers.get_nowait())
            return got
        deadline = asyncio.get_running_loop().time() + LINGER
        while len(got) < left:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                got.append(await asyncio.wait_for(answers.get(), remaining))
            except TimeoutError:
                break
        while len(got) < left and not answers.empty():
            got.append(answers.get_nowait())
        return got

    async def _settle_some(
        self, jobs: list[Job], found: list[tuple[Job, Any, SlackUser | Exception | None]],
        events: list[tuple[int, Event]], outcomes: dict[int, Outcome],
    ) -> list[asyncio.Task[None]]:  # fmt: skip
        """Settle the alerts whose people are ``found`` (and apply ``events``) in one
        transaction that records their jobs done; start sending the DMs it queued. The
        ``jobs`` already Done (nothing to ask) are recorded with the first call."""
        h = self.h
        people: list[dm_batch.Person] = []
        for job, alert, user in found:
            if isinstance(user, SlackRetryLater):
                outcomes[job.id] = retry_later(job, user)
                continue
            if isinstance(user, Exception):
                failed = isinstance(user, SlackPermanentError)
                why = str(user) if failed else f"{type(user).__name__}: {user}"
                events.append((alert.id, Event(EventType.DM_FAILED, comment=why)))
            else:
                ids_ = [alert.user_given, user.id if user else None, user.email if user else None]
                people.append(dm_batch.Person(alert.id, ids_, user, alert.kind, alert.user_given,
                                              alert.created_at))  # fmt: skip
            outcomes[job.id] = Done()
        window = timedelta(seconds=h.settings.escalation.group_window)
        done = [job.id for job in jobs if type(outcomes.get(job.id)) is Done]
        taken: list[tuple[Job, DmContext]] = []
        queued: set[str] = set()
        if done:
            # The jobs are recorded done in the transaction that settles their alerts, which
            # also hands this batch the DMs it queued (when a dispatcher can lease them).
            take = self.handover.lease if self.handover is not None and people else None
            settle = functools.partial(dm_batch.settle_people, h.db, people, window,
                                       events=events, done=done, take_dms=take)  # fmt: skip
            taken, queued = await asyncio.to_thread(settle)
            for job_id in done:
                outcomes[job_id] = Recorded()
        h.wake(queued)
        if not taken:
            return []
        return [asyncio.create_task(self._send_taken(taken))]

    async def send_dms(self, jobs: list[Job]) -> list[Outcome]:
        h = self.h
        if h.slack is None:
            return [Done() for _ in jobs]
        asked = [(j.id, j.alert_id, not j.delivery_started) for j in jobs if j.alert_id is not None]
        contexts = await asyncio.to_thread(dm_batch.prepare_dms, h.db, asked)
        sending = [(job, contexts[job.alert_id]) for job in jobs if job.alert_id in contexts]
        return await self._send(jobs, sending)

    async def _send(self, jobs: list[Job], sending: list[tuple[Job, DmContext]]) -> list[Outcome]:
        """Post the DMs of ``sending`` side by side, then record them (and the ``jobs`` that are
        done) in one transaction; each job's outcome."""
        h = self.h
        outcomes: dict[int, Outcome] = {job.id: Done() for job in jobs}
        if h.locales is not None:  # each person's language, read for all of them at once
            await h.locales.prefetch([ctx.alert.user_id or "" for _, ctx in sending])
        results = await _bounded([self._deliver_dm(job, ctx) for job, ctx in sending])
        sent: list[dm_batch.Sent] = []
        failed: list[tuple[int, Event]] = []
        for (job, ctx), result in zip(sending, results, strict=True):
            if isinstance(result, dm_batch.Sent):
                sent.append(result)
            elif isinstance(result, Event):
                failed.append((ctx.alert.id, result))
            else:
                outcomes[job.id] = result
        done = [job.id for job in jobs if type(outcomes[job.id]) is Done]
        queued = await asyncio.to_thread(dm_batch.finish_dms, h.db, sent, failed, done=done)
        for job_id in done:
            outcomes[job_id] = Recorded()
        h.wake(queued)
        return [outcomes[job.id] for job in jobs]

    async def _send_taken(self, taken: list[tuple[Job, DmContext]]) -> None:
        """Send the DMs ``settle_people`` claimed for this batch, leased like the lane's own
        jobs while they run. If this fails midway their leases run out and the send lane runs
        them again, looking first for what was posted (their delivery marks are committed)."""
        assert self.handover is not None
        jobs = [job for job, _ in taken]
        self.handover.adopt(jobs)
        outcomes: list[Outcome] = []
        try:
            outcomes = await self._send(jobs, taken)
        except Exception:
            logger.exception("DMs of alerts %s failed; they run again after their lease",
                             [job.alert_id for job in jobs])  # fmt: skip
        finally:
            await self.handover.release(jobs, outcomes)

    async def _deliver_dm(self, job: Job, dm: DmContext) -> dm_batch.Sent | Event | Outcome:
        """One alert's DM: what to record (sent, or the event of a failure), or the job's
        outcome when it must run again."""
        h, alert = self.h, dm.alert
        assert h.slack is not None and alert.user_id is not None
        if alert.dm_ts:  # posted before a crash, not yet recorded as sent
            return dm_batch.Sent(alert.id, {}, len(dm.grouped))
        try:
            user = await h.slack.lookup_user(alert.user_id)
            t = await h.speaks(alert.user_id, user.email if user else None)
            first = user.first_name if user else (alert.user_name or t.gettext("there"))
            text, blocks = messages.dm_message(
                alert, h.kinds.get(alert.kind), first_name=first, greet=dm.greet,
                grouped=dm.grouped, t=t,
            )  # fmt: skip
            # One call per DM: posted to the person's user id, Slack opens the DM and answers
            # with its channel id (kept for updates and deletions). Only a run after one that
            # may have posted needs the D… id first, to look in that DM's history.
            channel = alert.dm_channel or h.slack.dm_target(alert.user_id)
            if job.delivery_started and channel == alert.user_id:
                channel = await h._open_dm(job, alert.user_id, dm.marked)
            ts = await h._post_once(job, channel, text, blocks, "dm", marked=dm.marked)
            channel = h.slack.dm_target(alert.user_id) if channel == alert.user_id else channel
        except SlackRetryLater as exc:
            if exc.spends_attempt and job.attempts + 1 >= MAX_DM_ATTEMPTS:
                return Event(EventType.DM_FAILED, comment=str(exc))
            return retry_later(job, exc)
        except SlackPermanentError as exc:
            return Event(EventType.DM_FAILED, comment=str(exc))
        except Exception as exc:  # one DM's bug must not undo the batch's posts
            logger.exception("alert %s: DM failed", alert.id)
            return RetryAt(utcnow() + backoff(job.attempts + 1), f"{type(exc).__name__}: {exc}")
        also = {"dm_channel": channel, "dm_ts": ts, **h._deadlines(alert, user)}
        return dm_batch.Sent(alert.id, also, len(dm.grouped))
