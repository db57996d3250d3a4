"""Outbox handlers for the conversation: find the user, DM them, push Duo, update messages.
What the security team sees (the escalation post and its updates) is in ``escalation_posts``;
resetting a compromised user's sessions is in ``session_resets``."""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import update

from securitybot import metrics
from securitybot.domain import Event, EventType
from securitybot.domain.business_hours import add_business_seconds, parse_hhmm
from securitybot.flows import snoozes
from securitybot.flows.escalation_posts import EscalationPosts
from securitybot.flows.events import apply_by_id
from securitybot.flows.handler_core import HandlerCore
from securitybot.flows.locales import Locales
from securitybot.flows.push_support import duo_username, let_go, listening_to_duo
from securitybot.flows.session_resets import SessionResets
from securitybot.i18n import ENGLISH, Translator
from securitybot.outbox.dispatcher import Done, GiveUp, Handler, Job, Outcome, RetryAt, backoff
from securitybot.slack import messages
from securitybot.slack.gateway import SlackPermanentError, SlackRetryLater, SlackUser
from securitybot.slack.retry_later import retry_later
from securitybot.store import alerts as alert_store
from securitybot.store.models import Alert, utcnow
from securitybot.store.outbox import enqueue, enqueue_leased
from securitybot.verify.base import (
    PROVIDER_LABELS,
    PushPoll,
    PushStart,
    PushStatus,
    StartResult,
    provider_named,
)

MAX_DM_ATTEMPTS = 8  # then the DM counts as failed and the alert escalates (fail closed)
MAX_DUO_ERRORS = 3  # Duo errors are retried briefly; then escalate with duo_error
DUO_POLL_INTERVAL = 1.0
# poll_duo may sit in Duo's long-poll for a minute: it runs beside the alert's other jobs, and
# one is held per waiting push without taking a dispatcher slot (Dispatcher.held).
UNORDERED_EFFECTS = frozenset({"poll_duo"})
HELD_EFFECTS = frozenset({"poll_duo"})
# Threads for what happens once a push is on the phone (reading the alert before the
# long-poll, applying the answer; recording the push has its own), on SQLite: with 2,000 people
# pushed at once, the default pool's threads all queue on the one writer with the push starts,
# and a poll or an approval queued behind them waited about as long as the burst took. Their
# SQLite writes go before queued ordinary writes too (Database.write's priority).
VERDICT_THREADS = 4
# Recording a push that reached the phone: threads of its own too, so a burst of 2,000 of them
# neither waits behind the default pool nor holds back the verdicts above.
RECORD_THREADS = 8


@dataclass
class ConversationHandlers(HandlerCore):
    locales: Locales | None = None  # the person's language; English without it
    _verdicts: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(VERDICT_THREADS, thread_name_prefix="verdict"),
        init=False, repr=False, compare=False,
    )  # fmt: skip
    _records: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(RECORD_THREADS, thread_name_prefix="pushed"),
        init=False, repr=False, compare=False,
    )  # fmt: skip

    # Polls asked of Duo while their push was being recorded, by the poll job the record
    # wrote (handed over to this process): that job takes its answer instead of asking again.
    _early_polls: dict[int, asyncio.Future[PushPoll]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def _poll_early(self, handle: str) -> asyncio.Future[PushPoll] | None:
        """Ask Duo about a push that just reached the phone, if this process will run its
        poll job itself (handed over) and a long-poll slot is free."""
        if self.handover is None or self.verifier.saturated():
            return None
        return asyncio.ensure_future(self.verifier.poll(handle))

    async def speaks(self, user_id: str | None, email: str | None = None) -> Translator:
        """The catalog of the person an alert is about (``flows/locales.py``)."""
        if self.locales is None or not user_id:
            return ENGLISH
        return await self.locales.for_user(user_id, email)

    async def _urgent(self, pool: ThreadPoolExecutor, fn: Any, *args: Any) -> Any:
        """``fn`` on its own threads: the default pool is busy with the burst that caused the
        pushes (every click's answer, DM updates, lookups), and on SQLite queues behind the one
        writer. On PostgreSQL too, since the poll starts straight from the push: a push's
        record waiting in the default pool was most of the wait before its poll was held
        (bench/duo.py, 1,000 pushes: approval -> resolved p99 2.25 s there, 1.45 s here)."""
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    async def apply_verdict(self, alert_id: int, event: Event, **kw: Any) -> None:
        """Apply a push's answer ahead of queued ordinary writes: the person who approved is
        waiting, the push starts queued beside it are not."""
        call = functools.partial(apply_by_id, self.db, alert_id, event, priority=True, **kw)
        await self._urgent(self._verdicts, call)
        self.wake()

    def handlers(self) -> dict[str, Handler]:
        return {
            "start_duo_push": self.start_duo_push,
            "poll_duo": self.poll_duo,
            "update_dm": self.update_dm,
            "send_reminder": self.send_reminder,
            "refresh_dm": self.refresh_dm,
            **EscalationPosts(self).handlers(),
            **SessionResets(self).handlers(),
        }

    # -- handlers ----------------------------------------------------------------------------
    async def refresh_dm(self, job: Job) -> Outcome:
        """Re-render a still-open DM (e.g. more alerts joined its group)."""
        alert = await self.load(job.alert_id)
        if alert is None or alert.status != "awaiting_ack" or not alert.dm_ts or not self.slack:
            return Done()
        assert alert.dm_channel is not None and alert.user_id is not None
        user = await self.slack.lookup_user(alert.user_id)
        grouped = await asyncio.to_thread(self._grouped, alert.id)
        t = await self.speaks(alert.user_id, user.email if user else None)
        text, blocks = messages.dm_message(
            alert,
            self.kinds.get(alert.kind),
            first_name=user.first_name if user else t.gettext("there"),
            greet=False,
            grouped=grouped,
            t=t,
        )
        return await self._deliver(
            job, self.slack.update(alert.dm_channel, alert.dm_ts, text, blocks)
        )

    async def _open_dm(self, job: Job, user_id: str, marked: bool) -> str:
        """The DM channel; if Slack could not open it, the delivery mark committed for this run
        is taken back (nothing was posted, so the next run need not search the history)."""
        assert self.slack is not None
        try:
            return await self.slack.open_dm(user_id)
        except SlackRetryLater:
            if marked:
                await asyncio.to_thread(self._mark_delivery_started, job.id, False)
            raise

    def _deadlines(self, alert: Alert, user: SlackUser | None) -> dict[str, Any]:
        """respond_by in business hours (user's time zone) when configured, and the reminder."""
        now = utcnow()
        seconds = float((alert.policy or {}).get("ack_timeout", self.settings.policy.ack_timeout))
        respond_by = now + timedelta(seconds=seconds)
        out: dict[str, Any] = {}
        bh = self.settings.policy.business_hours
        if bh is not None:
            try:
                tz = ZoneInfo((user.tz if user else None) or bh.default_tz)
            except (ZoneInfoNotFoundError, ValueError):
                tz = ZoneInfo(bh.default_tz)
            respond_by = add_business_seconds(
                now, seconds, tz=tz, weekdays=bh.weekdays,
                opens=parse_hhmm(bh.start), closes=parse_hhmm(bh.end),
            )  # fmt: skip
            out["respond_by"] = respond_by
        if self.settings.policy.reminder:
            out["remind_at"] = now + (respond_by - now) / 2
        return out

    async def start_duo_push(self, job: Job) -> Outcome:
        alert = await self.load(job.alert_id)
        if alert is None or alert.status != "awaiting_2fa":
            return Done()
        if alert.duo_txid:  # pushed before a crash: keep polling that push, never a shortcut
            return Done()
        user = await self.slack.lookup_user(alert.user_id) if self.slack and alert.user_id else None
        mode = getattr(self.verifier, "username_mode", self.settings.duo.username)
        username = duo_username(mode, user, alert)
        # Duo shows pushinfo's keys and values as lines on the phone, in the person's language.
        _ = (await self.speaks(alert.user_id, user.email if user else None)).gettext
        pushinfo = {_("Alert"): alert.title[:100], _("Alert id"): str(alert.id)}
        if (alert.details or {}).get("host"):
            pushinfo[_("Host")] = str(alert.details["host"])[:100]
        if job.delivery_started:
            # An earlier run was about to push and never recorded what happened (a crash, a
            # lost commit): the phone may already show that push. One push per "yes": escalate.
            started = PushStart(StartResult.ERROR, detail="an earlier push attempt did not "
                                "finish; not pushing a second time", sent=True)  # fmt: skip
        else:
            await asyncio.to_thread(self._mark_delivery_started, job.id, True)
            started = await self.verifier.start_push(username, pushinfo)
        details = {"verifier": self.verifier.name, "detail": started.detail}
        if started.result == StartResult.PUSHED:
            assert started.txid is not None and started.poll_handle is not None
            # The push is on the phone now: ask Duo at once, while the push is recorded (a
            # write that queues behind a burst's others); its answer is applied only by the
            # poll job that the record writes, so never before the record nor without it.
            early = self._poll_early(started.poll_handle)
            try:
                recorded = await self._urgent(
                    self._records, self._record_push, alert.id, started.txid,
                    started.poll_handle, details,
                )  # fmt: skip
            except BaseException:
                await let_go(early)
                raise
            if isinstance(recorded, Job) and self.handover is not None:
                if early is not None:
                    self._early_polls[recorded.id] = early
                self.handover.run([recorded])  # polled from here, at once
                return Done()
            await let_go(early)
            if recorded:
                self.wake(["poll_duo"])  # only the poll's claimer: nothing else was written
            return Done()
        retry = started.result == StartResult.ERROR and job.attempts + 1 < MAX_DUO_ERRORS
        if retry and not started.sent:
            # Nothing reached the phone (the user lookup failed): a retry pushes at most once.
            await asyncio.to_thread(self._mark_delivery_started, job.id, False)
            return RetryAt(utcnow() + backoff(job.attempts + 1), started.detail)
        event = (
            EventType.DUO_ERROR
            if started.result == StartResult.ERROR
            else EventType.DUO_NOT_ENROLLED
        )
        metrics.VERIFY_RESULTS.labels(self.verifier.name, event.value.removeprefix("duo_")).inc()
        await self.apply(alert.id, Event(event, comment=started.detail), audit_details=details)
        return Done()

    def _record_push(
        self, alert_id: int, txid: str, handle: str, details: dict[str, Any]
    ) -> Job | bool:
        """Record the push and its poll job: the job itself when this process polls it at
        once (written leased to it), else whether anything was recorded."""
        # Straight from here, not through a claim: on PostgreSQL, with 2,000 pushes at once,
        # the claim's round trips held the first poll back so long (p99 1.8 s) that most
        # people approved before anyone listened for their answer (bench/duo.py).
        lease = self.handover.lease if self.handover is not None else None
        with self.db.write(priority=True) as session:
            changed = session.execute(
                update(Alert)
                .where(
                    Alert.id == alert_id, Alert.status == "awaiting_2fa", Alert.duo_txid.is_(None)
                )
                .values(duo_txid=txid, updated_at=utcnow())
            ).rowcount  # type: ignore[attr-defined]
            if not changed:
                return False
            alert_store.audit(session, alert_id=alert_id, actor="system", action="duo.push_sent",
                              details=details)  # fmt: skip
            # The poll job keeps the provider's handle (Okta's poll link) in full, so a restart
            # polls the very link the provider gave. It is due at once: Duo answers the first
            # poll of a push at once and then holds the next until the phone answers.
            payload = {"txid": txid} if handle == txid else {"txid": txid, "handle": handle}
            key = f"poll:{alert_id}:{txid}"
            if lease is None:
                enqueue(session, effect="poll_duo", alert_id=alert_id, payload=payload,
                        idempotency_key=key)  # fmt: skip
                return True
            written = enqueue_leased(session, effect="poll_duo", alert_id=alert_id,
                                     payload=payload, idempotency_key=key,
                                     lease=lease)  # fmt: skip
        if written is None:
            return True  # the key's row was there already: its claimer polls it
        job_id, created = written
        return Job(job_id, "poll_duo", alert_id, payload, 0, created, handed_over=True)

    async def poll_duo(self, job: Job) -> Outcome:
        early = self._early_polls.pop(job.id, None) if job.handed_over else None
        if early is None and self.verifier.saturated():
            # The poll would only say "still waiting" without asking Duo: skip reading the
            # alert too. With hundreds of pushes waiting on phones, that read was most of the
            # cost of polling them again every second.
            return RetryAt(utcnow() + timedelta(seconds=DUO_POLL_INTERVAL), failure=False)
        txid = job.payload.get("txid")
        if not job.handed_over:
            # Until this read is done the push's long-poll is not held in Duo, and a person
            # who approves meanwhile waits for it: the verdict threads, not the default pool.
            # A handed-over job was written with the push a moment ago: nothing to check.
            alert = await self._urgent(self._verdicts, self._load, job.alert_id)
            if alert is None or alert.duo_txid != txid or not listening_to_duo(alert):
                return Done()
        handle = str(job.payload.get("handle") or txid)
        polled = await early if early is not None else await self.verifier.poll(handle)
        if polled.status == PushStatus.WAITING:
            return RetryAt(utcnow() + timedelta(seconds=DUO_POLL_INTERVAL), failure=False)
        if polled.status == PushStatus.ERROR and job.attempts + 1 < MAX_DUO_ERRORS:
            return RetryAt(utcnow() + backoff(job.attempts + 1), polled.detail)
        event = {
            PushStatus.APPROVED: EventType.DUO_APPROVED,
            PushStatus.DENIED: EventType.DUO_DENIED,
            PushStatus.FRAUD: EventType.DUO_FRAUD,
            # Like a bypass user at preauth: Duo let them in without proving anything.
            PushStatus.BYPASS: EventType.DUO_NOT_ENROLLED,
            PushStatus.TIMEOUT: EventType.DUO_TIMEOUT,
            PushStatus.ERROR: EventType.DUO_ERROR,
        }[polled.status]
        metrics.VERIFY_RESULTS.labels(self.verifier.name, event.value.removeprefix("duo_")).inc()
        # Duo's actor stays "duo", as before; other providers answer under their own name.
        actor = self.verifier.name if self.verifier.name in PROVIDER_LABELS else "duo"
        answer = Event(event, actor=actor, comment=polled.detail or None)
        assert job.alert_id is not None
        await self.apply_verdict(job.alert_id, answer,
                                 audit_details={"verifier": self.verifier.name})  # fmt: skip
        return Done()

    async def update_dm(self, job: Job) -> Outcome:
        alert = await self.load(job.alert_id)
        if alert is None or not alert.dm_ts or not alert.dm_channel or self.slack is None:
            return Done()
        # The domain's texts (English msgids, effects.DM_TEXTS) in the person's language; they
        # say "Duo", and the user hears the name of the push they really got.
        t = await self.speaks(alert.user_id)
        said = provider_named(t.gettext(str(job.payload.get("text", ""))), self.verifier.name, {})
        text, blocks = messages.answered_message(
            alert, self.kinds.get(alert.kind), said,
            offer_snooze=snoozes.can_snooze(alert), t=t,
        )  # fmt: skip
        return await self._deliver(
            job, self.slack.update(alert.dm_channel, alert.dm_ts, text, blocks)
        )

    async def send_reminder(self, job: Job) -> Outcome:
        alert = await self.load(job.alert_id)
        if (
            alert is None
            or alert.status != "awaiting_ack"
            or not alert.dm_channel
            or not self.slack
        ):
            return Done()
        minutes = None
        if alert.respond_by:
            minutes = max(1, int((alert.respond_by - utcnow()).total_seconds() // 60))
        text = messages.reminder_text(alert, minutes, await self.speaks(alert.user_id),
                                      self.kinds.get(alert.kind))  # fmt: skip
        try:
            await self._post_once(job, alert.dm_channel, text, None, "reminder")
        except SlackRetryLater as exc:
            return retry_later(job, exc)
        except SlackPermanentError as exc:
            return GiveUp(str(exc))
        await asyncio.to_thread(self._audit, alert, "alert.reminder_sent", {})
        return Done()
