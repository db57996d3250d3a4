"""Outbox handlers for the conversation: find the user, DM them, push Duo, update messages."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from securitybot.config import Settings
from securitybot.domain import Event, EventType
from securitybot.flows.events import apply_by_id
from securitybot.kinds import KindRegistry
from securitybot.outbox.dispatcher import Done, GiveUp, Handler, Job, Outcome, RetryAt, backoff
from securitybot.slack import messages
from securitybot.slack.gateway import SlackGateway, SlackPermanentError, SlackRetryLater, SlackUser
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, utcnow
from securitybot.store.outbox import enqueue
from securitybot.verify.base import PushStatus, StartResult, Verifier

logger = logging.getLogger(__name__)

MAX_DM_ATTEMPTS = 8  # then the DM counts as failed and the alert escalates (fail closed)
MAX_DUO_ERRORS = 3  # Duo errors are retried briefly; then escalate with duo_error
DUO_POLL_INTERVAL = 1.0


def duo_username(mode: str, user: SlackUser | None, alert: Alert) -> str:
    email = (user.email if user else None) or (alert.user_given if "@" in alert.user_given else "")
    if mode == "email" and email:
        return email
    if mode == "slack_name" and user is not None:
        return user.name
    if email:
        return email.split("@", 1)[0]
    return user.name if user else alert.user_given


@dataclass
class ConversationHandlers:
    db: Database
    settings: Settings
    kinds: KindRegistry
    slack: SlackGateway | None
    verifier: Verifier
    wake: Any  # callable that wakes the dispatcher after new outbox rows

    def handlers(self) -> dict[str, Handler]:
        return {
            "start_conversation": self.start_conversation,
            "send_dm": self.send_dm,
            "start_duo_push": self.start_duo_push,
            "poll_duo": self.poll_duo,
            "update_dm": self.update_dm,
            "post_escalation": self.post_escalation,
            "update_escalation": self.update_escalation,
            "reset_sessions": self.reset_sessions,
        }

    # -- helpers ---------------------------------------------------------------------------
    def _load(self, alert_id: int | None) -> Alert | None:
        if alert_id is None:
            return None
        with self.db.read() as session:
            return alert_store.get(session, alert_id)

    async def load(self, alert_id: int | None) -> Alert | None:
        return await asyncio.to_thread(self._load, alert_id)

    async def apply(self, alert_id: int, event: Event, **kw: Any) -> None:
        await asyncio.to_thread(apply_by_id, self.db, alert_id, event, **kw)
        self.wake()

    def _set(self, alert_id: int, expect_status: str | None = None, **values: Any) -> bool:
        with self.db.write() as session:
            q = update(Alert).where(Alert.id == alert_id)
            if expect_status:
                q = q.where(Alert.status == expect_status)
            return bool(session.execute(q.values(**values)).rowcount)  # type: ignore[attr-defined]

    def _slack_retry(self, job: Job, exc: SlackRetryLater) -> RetryAt:
        delay = timedelta(seconds=exc.retry_after) if exc.retry_after else backoff(job.attempts + 1)
        return RetryAt(utcnow() + delay, str(exc))

    # -- handlers ----------------------------------------------------------------------------
    async def start_conversation(self, job: Job) -> Outcome:
        alert = await self.load(job.alert_id)
        if alert is None or alert.status != "new":
            return Done()
        if self.slack is None:
            await self.apply(
                alert.id, Event(EventType.DM_FAILED, comment="Slack is not configured")
            )
            return Done()
        try:
            user = await self.slack.lookup_user(alert.user_given)
        except SlackRetryLater as exc:
            return self._slack_retry(job, exc)
        except SlackPermanentError as exc:
            await self.apply(alert.id, Event(EventType.DM_FAILED, comment=str(exc)))
            return Done()
        if user is None or user.deleted or user.is_bot:
            why = "not found in Slack" if user is None else "deactivated or a bot"
            await self.apply(alert.id, Event(EventType.USER_UNKNOWN, comment=why))
            return Done()
        await self.apply(
            alert.id,
            Event(EventType.USER_RESOLVED),
            also_set={"user_id": user.id, "user_name": user.name},
        )
        return Done()

    def _greet(self, alert: Alert) -> bool:
        # The first DM a person ever gets from the bot explains why it is asking.
        with self.db.read() as session:
            earlier = session.scalar(
                select(Alert.id)
                .where(
                    Alert.user_id == alert.user_id, Alert.dm_ts.is_not(None), Alert.id != alert.id
                )
                .limit(1)
            )
        return earlier is None

    async def send_dm(self, job: Job) -> Outcome:
        alert = await self.load(job.alert_id)
        if alert is None or alert.status != "new" or self.slack is None or not alert.user_id:
            return Done()
        if alert.dm_ts:  # posted before a crash, not yet recorded as sent
            await self.apply(alert.id, Event(EventType.DM_SENT))
            return Done()
        user = await self.slack.lookup_user(alert.user_id)
        first = user.first_name if user else (alert.user_name or "there")
        greet = await asyncio.to_thread(self._greet, alert)
        text, blocks = messages.dm_message(
            alert, self.kinds.get(alert.kind), first_name=first, greet=greet
        )
        try:
            channel = alert.dm_channel or await self.slack.open_dm(alert.user_id)
            ts = await self.slack.post(channel, text, blocks)
        except SlackRetryLater as exc:
            if job.attempts + 1 >= MAX_DM_ATTEMPTS:
                await self.apply(alert.id, Event(EventType.DM_FAILED, comment=str(exc)))
                return Done()
            return self._slack_retry(job, exc)
        except SlackPermanentError as exc:
            await self.apply(alert.id, Event(EventType.DM_FAILED, comment=str(exc)))
            return Done()
        await self.apply(
            alert.id, Event(EventType.DM_SENT), also_set={"dm_channel": channel, "dm_ts": ts}
        )
        return Done()

    async def start_duo_push(self, job: Job) -> Outcome:
        alert = await self.load(job.alert_id)
        if alert is None or alert.status != "awaiting_2fa":
            return Done()
        if alert.duo_txid:  # pushed before a crash: keep polling that push, never a shortcut
            return Done()
        user = await self.slack.lookup_user(alert.user_id) if self.slack and alert.user_id else None
        username = duo_username(self.settings.duo.username, user, alert)
        pushinfo = {"Alert": alert.title[:100], "Alert id": str(alert.id)}
        if (alert.details or {}).get("host"):
            pushinfo["Host"] = str(alert.details["host"])[:100]
        started = await self.verifier.start_push(username, pushinfo)
        details = {"verifier": self.verifier.name, "detail": started.detail}
        if started.result == StartResult.PUSHED:
            assert started.txid is not None
            ok = await asyncio.to_thread(self._record_push, alert.id, started.txid, details)
            if ok:
                self.wake()
            return Done()
        if started.result == StartResult.ERROR and job.attempts + 1 < MAX_DUO_ERRORS:
            return RetryAt(utcnow() + backoff(job.attempts + 1), started.detail)
        event = (
            EventType.DUO_ERROR
            if started.result == StartResult.ERROR
            else EventType.DUO_NOT_ENROLLED
        )
        await self.apply(alert.id, Event(event, comment=started.detail), audit_details=details)
        return Done()

    def _record_push(self, alert_id: int, txid: str, details: dict[str, Any]) -> bool:
        with self.db.write() as session:
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
            enqueue(session, effect="poll_duo", alert_id=alert_id, payload={"txid": txid},
                    idempotency_key=f"poll:{alert_id}:{txid}",
                    at=utcnow() + timedelta(seconds=DUO_POLL_INTERVAL))  # fmt: skip
            return True

    async def poll_duo(self, job: Job) -> Outcome:
        alert = await self.load(job.alert_id)
        txid = job.payload.get("txid")
        if alert is None or alert.status != "awaiting_2fa" or alert.duo_txid != txid:
            return Done()
        polled = await self.verifier.poll(str(txid))
        if polled.status == PushStatus.WAITING:
            return RetryAt(utcnow() + timedelta(seconds=DUO_POLL_INTERVAL), failure=False)
        if polled.status == PushStatus.ERROR and job.attempts + 1 < MAX_DUO_ERRORS:
            return RetryAt(utcnow() + backoff(job.attempts + 1), polled.detail)
        event = {
            PushStatus.APPROVED: EventType.DUO_APPROVED,
            PushStatus.DENIED: EventType.DUO_DENIED,
            PushStatus.TIMEOUT: EventType.DUO_TIMEOUT,
            PushStatus.ERROR: EventType.DUO_ERROR,
        }[polled.status]
        await self.apply(alert.id, Event(event, actor="duo", comment=polled.detail or None))
        return Done()

    async def update_dm(self, job: Job) -> Outcome:
        alert = await self.load(job.alert_id)
        if alert is None or not alert.dm_ts or not alert.dm_channel or self.slack is None:
            return Done()
        text, blocks = messages.answered_message(
            alert, self.kinds.get(alert.kind), str(job.payload.get("text", ""))
        )
        try:
            await self.slack.update(alert.dm_channel, alert.dm_ts, text, blocks)
        except SlackRetryLater as exc:
            return self._slack_retry(job, exc)
        except SlackPermanentError as exc:
            return GiveUp(str(exc))
        return Done()

    def _timeline(self, alert_id: int) -> list[tuple[Any, str]]:
        with self.db.read() as session:
            rows = session.scalars(
                select(AuditLog).where(AuditLog.alert_id == alert_id).order_by(AuditLog.id)
            ).all()
        return [(r.created_at, timeline_text(r)) for r in rows if timeline_text(r)]

    async def _render_escalation(self, alert: Alert) -> tuple[str, list[dict[str, Any]]]:
        timeline = await asyncio.to_thread(self._timeline, alert.id)
        return messages.escalation_message(alert, self.kinds.get(alert.kind), timeline)

    async def post_escalation(self, job: Job) -> Outcome:
        alert = await self.load(job.alert_id)
        if alert is None:
            return Done()
        channel = self.settings.slack.security_channel
        if self.slack is None or not channel:
            logger.error("alert %s escalated but no Slack security channel is configured", alert.id)
            return GiveUp("slack.security_channel is not configured")
        text, blocks = await self._render_escalation(alert)
        try:
            if alert.escalation_ts and alert.escalation_channel:
                await self.slack.update(alert.escalation_channel, alert.escalation_ts, text, blocks)
            else:
                ts = await self.slack.post(channel, text, blocks)
                await asyncio.to_thread(
                    self._set, alert.id, escalation_channel=channel, escalation_ts=ts
                )
        except SlackRetryLater as exc:
            return self._slack_retry(job, exc)
        except SlackPermanentError as exc:
            # An escalation must never be dropped: keep trying, slowly, and shout in the log.
            logger.error("escalation of alert %s failed: %s", alert.id, exc)
            return RetryAt(utcnow() + backoff(job.attempts + 1, cap=600), str(exc))
        return Done()

    async def update_escalation(self, job: Job) -> Outcome:
        alert = await self.load(job.alert_id)
        if (
            alert is None
            or not alert.escalation_ts
            or not alert.escalation_channel
            or not self.slack
        ):
            return Done()
        text, blocks = await self._render_escalation(alert)
        try:
            await self.slack.update(alert.escalation_channel, alert.escalation_ts, text, blocks)
        except SlackRetryLater as exc:
            return self._slack_retry(job, exc)
        except SlackPermanentError as exc:
            return GiveUp(str(exc))
        return Done()

    async def reset_sessions(self, job: Job) -> Outcome:
        alert = await self.load(job.alert_id)
        if alert is None or not alert.user_id or self.slack is None:
            return GiveUp("no Slack user to reset")
        try:
            await self.slack.reset_sessions(alert.user_id)
        except SlackRetryLater as exc:
            return self._slack_retry(job, exc)
        except SlackPermanentError as exc:
            await asyncio.to_thread(
                self._audit, alert, "user.sessions_reset_failed", {"error": exc.error}
            )
            return GiveUp(str(exc))
        await asyncio.to_thread(self._audit, alert, "user.sessions_reset", {"user": alert.user_id})
        return Done()

    def _audit(self, alert: Alert, action: str, details: dict[str, Any]) -> None:
        with self.db.write() as session:
            alert_store.audit(session, alert_id=alert.id, actor="system", action=action,
                              details=details, subject_user=alert.user_id)  # fmt: skip


_TIMELINE = {
    "alert.ingested": "Alert ingested",
    "alert.dm_sent": "DM sent to the user",
    "alert.user_confirmed": "User said it was them; Duo push requested",
    "alert.user_denied": "User said it was *not* them",
    "duo.push_sent": "Duo push sent",
    "alert.duo_approved": "Duo push *approved*",
    "alert.duo_denied": "Duo push *denied*",
    "alert.duo_timeout": "Duo push not answered",
    "alert.duo_error": "Duo error",
    "alert.duo_not_enrolled": "No usable Duo device",
    "alert.deadline_passed": "Deadline passed without an answer",
    "alert.user_unknown": "User not found in Slack",
    "alert.dm_failed": "DM could not be delivered",
    "alert.claimed": "Claimed",
    "alert.resolved_benign": "Resolved as benign",
    "alert.confirmed_compromise": "Compromise confirmed; sessions reset requested",
    "user.sessions_reset": "User's Slack sessions reset",
}


def timeline_text(row: AuditLog) -> str:
    base = _TIMELINE.get(row.action)
    if base is None:
        return ""
    if row.actor not in ("system", "duo") and not row.actor.startswith("source:"):
        base += f" by <@{row.actor}>"
    comment = (row.details or {}).get("comment")
    if comment and row.action in (
        "alert.user_confirmed",
        "alert.user_denied",
        "alert.resolved_benign",
        "alert.duo_error",
        "alert.dm_failed",
    ):
        base += f": “{str(comment)[:200]}”"
    return base
