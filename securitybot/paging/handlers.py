"""Outbox handlers that page: trigger, acknowledge and resolve a page, note Opsgenie's timeline,
and act on PagerDuty's webhooks.

Each step is sent once. Its outbox row exists once (``hooks.step_key``), and the page's status,
moved in the same transaction that records the step's audit row, says whether it still needs
sending: a run that follows a crash finds the step done and stops. The one window left, a crash
between the vendor's 202 and our commit, sends the same step again with the same dedup key or
alias, which both vendors fold into the same incident (PagerDuty's dedup key, Opsgenie's alias).
Notes have no such key: a run after a started, unrecorded one first reads the alert's notes
and skips those already there (each carries its audit row's id).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update

from securitybot import metrics
from securitybot.config import Settings
from securitybot.domain import Event, EventType
from securitybot.flows.events import apply_by_id
from securitybot.flows.timeline import timeline_text
from securitybot.kinds import KindRegistry, escalation_severity
from securitybot.outbox.jobs import Done, GiveUp, Handler, Job, Outcome, RetryAt, Wake
from securitybot.paging import hooks, payloads
from securitybot.paging.timeline import plain
from securitybot.paging.vendors import Answer, Opsgenie, PagerDuty, outcome
from securitybot.paging.webhook import act_on_event
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, Outbox, utcnow
from securitybot.store.outbox import enqueue, mark_delivery_started
from securitybot.store.paging_models import Page, PagedAlert

logger = logging.getLogger(__name__)
NOTE_MARK = " [securitybot {}]"


@dataclass(frozen=True)
class Loaded:
    page: Page
    alert: Alert
    members: int
    timeline: list[AuditLog]


@dataclass
class PagingHandlers:
    db: Database
    settings: Settings
    kinds: KindRegistry
    wake: Wake
    slack: Any = None  # SlackGateway: permalinks, and finding a PagerDuty user in Slack
    responders: Any = None  # slack.triage.Responders: who may be claimed for

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient()
        self.pagerduty = PagerDuty(self.settings.paging.pagerduty, self.http)
        self.opsgenie = Opsgenie(self.settings.paging.opsgenie, self.http)

    def handlers(self) -> dict[str, Handler]:
        return {
            "page_trigger": self.trigger,
            "page_acknowledge": self.acknowledge,
            "page_resolve": self.resolve,
            "page_notes": self.notes,
            "pagerduty_webhook": self.webhook_event,
        }

    async def close(self) -> None:
        await self.http.aclose()

    # -- reading and recording --------------------------------------------------------------
    def _load(self, provider: str, key: str) -> Loaded | None:
        with self.db.read() as session:
            page = session.get(Page, (provider, key))
            if page is None:
                return None
            alert = session.get(Alert, page.alert_id)
            if alert is None:
                return None
            members = session.scalar(
                select(func.count()).select_from(PagedAlert).where(PagedAlert.dedup_key == key)
            )
            rows = list(session.scalars(
                select(AuditLog).where(AuditLog.alert_id == alert.id).order_by(AuditLog.id)
            ))  # fmt: skip
            session.expunge_all()
            return Loaded(page, alert, int(members or 1), rows)

    def _record(self, job: Job, status: str, only_from: tuple[str, ...], action: str,
                step: str, **more: Any) -> None:  # fmt: skip
        provider, key = job.payload["provider"], job.payload["dedup_key"]
        with self.db.write() as session:
            moved = hooks.set_status(session, provider, key, status, only_from=only_from, **more)
            if moved and job.alert_id is not None:
                alert_store.audit(session, alert_id=job.alert_id, actor="system", action=action,
                                  details={"provider": provider, "dedup_key": key})  # fmt: skip
                if action == "paging.triggered":
                    # The escalation post shows that the on-call was paged.
                    enqueue(session, effect="update_escalation", alert_id=job.alert_id,
                            idempotency_key=f"paged:{provider}:{key}")  # fmt: skip
        metrics.PAGES_SENT.labels(provider, step).inc()
        self.wake(["update_escalation"])

    def _escalation(self, loaded: Loaded, slack_url: str | None) -> payloads.Escalation:
        alert = loaded.alert
        base = self.settings.paging.dashboard_url
        timeline = [(r.created_at, plain(t)) for r in loaded.timeline if (t := timeline_text(r))]
        return payloads.Escalation(
            alert_id=alert.id, kind=alert.kind,
            severity=escalation_severity(self.kinds.get(alert.kind), alert.escalation_reason).value,
            title=alert.title, description=alert.description or "", user=alert.user_given,
            user_id=alert.user_id, reason=alert.escalation_reason, source=alert.source,
            details=dict(alert.details or {}), escalated_at=alert.escalated_at or utcnow(),
            timeline=timeline, alerts=loaded.members,
            dashboard_url=f"{base}/dashboard/alerts/{alert.id}" if base else None,
            slack_url=slack_url,
        )  # fmt: skip

    async def _slack_link(self, alert: Alert) -> str | None:
        """The escalation post's permalink, as Slack gives it (chat.getPermalink)."""
        if self.slack is None or not alert.escalation_channel or not alert.escalation_ts:
            return None
        try:
            resp = await self.slack.client.chat_getPermalink(
                channel=alert.escalation_channel, message_ts=alert.escalation_ts
            )
        except Exception as exc:  # a page must not wait for a link
            logger.warning("alert %s: no Slack permalink (%s)", alert.id, exc)
            return None
        link = resp.get("permalink")
        return str(link) if isinstance(link, str) else None

    # -- the steps ----------------------------------------------------------------------------
    async def _send(self, job: Job, send: Any) -> tuple[Outcome, Answer | None]:
        provider = job.payload["provider"]
        try:
            answer: Answer = await send
        except httpx.HTTPError as exc:
            return outcome(job, provider, None, exc), None
        return outcome(job, provider, answer), answer

    async def trigger(self, job: Job) -> Outcome:
        provider, key = job.payload["provider"], job.payload["dedup_key"]
        loaded = await asyncio.to_thread(self._load, provider, key)
        if loaded is None or loaded.page.status != "queued":
            return Done()  # sent already (a run after a crash), or no page any more
        esc = self._escalation(loaded, await self._slack_link(loaded.alert))
        if provider == "pagerduty":
            send = self.pagerduty.send(payloads.pagerduty_trigger(esc, key))
        else:
            og = self.settings.paging.opsgenie
            body = payloads.opsgenie_create(
                esc,
                key,
                responders=[r.model_dump(exclude_none=True) for r in og.responders],
                tags=list(og.tags),
            )
            send = self.opsgenie.create(body)
        result, _answer = await self._send(job, send)
        if isinstance(result, Done):
            noted = max((r.id for r in loaded.timeline), default=0)
            await asyncio.to_thread(self._record, job, "triggered", ("queued",),
                                    "paging.triggered", "trigger", noted_through=noted)  # fmt: skip
        return result

    async def _step(self, job: Job, step: str, status: str, done: tuple[str, ...]) -> Outcome:
        provider, key = job.payload["provider"], job.payload["dedup_key"]
        loaded = await asyncio.to_thread(self._load, provider, key)
        if loaded is None or loaded.page.status in done:
            return Done()
        if loaded.page.status == "queued":
            # Before the trigger has landed, an acknowledge or resolve would be dropped (no
            # open alert yet): wait for it, unless it will never land.
            trigger = await asyncio.to_thread(self._trigger_state, provider, key)
            if trigger == "dead":
                return GiveUp(f"the page {key} was never triggered")
            return RetryAt(utcnow() + timedelta(seconds=2), "waiting for the trigger",
                           failure=False)  # fmt: skip
        if provider == "pagerduty":
            send = self.pagerduty.send(payloads.pagerduty_step(step, key))
        else:
            action = "acknowledge" if step == "acknowledge" else "close"
            send = self.opsgenie.act(key, action, {"source": "Securitybot"})
        result, _answer = await self._send(job, send)
        if isinstance(result, Done):
            only = tuple(s for s in ("queued", "triggered", "acknowledged") if s not in done)
            await asyncio.to_thread(self._record, job, status, only, f"paging.{step}_sent", step)
        return result

    def _trigger_state(self, provider: str, key: str) -> str | None:
        with self.db.read() as session:
            return session.scalar(select(Outbox.status).where(
                Outbox.idempotency_key == hooks.step_key(provider, key, "trigger")))  # fmt: skip

    async def acknowledge(self, job: Job) -> Outcome:
        return await self._step(job, "acknowledge", "acknowledged", ("acknowledged", "resolved"))

    async def resolve(self, job: Job) -> Outcome:
        return await self._step(job, "resolve", "resolved", ("resolved",))

    # -- Opsgenie notes: one per timeline step ---------------------------------------------------
    def _unnoted(self, key: str, through: int) -> tuple[Page | None, list[AuditLog]]:
        with self.db.read() as session:
            page = session.get(Page, ("opsgenie", key))
            if page is None:
                return None, []
            members = select(PagedAlert.alert_id).where(PagedAlert.dedup_key == key)
            rows = list(session.scalars(
                select(AuditLog).where(AuditLog.alert_id.in_(members),
                                       AuditLog.id > page.noted_through, AuditLog.id <= through)
                .order_by(AuditLog.id)
            ))  # fmt: skip
            session.expunge_all()
            return page, rows

    def _noted(self, key: str, through: int) -> None:
        with self.db.write() as session:
            session.execute(
                update(Page)
                .where(Page.provider == "opsgenie", Page.dedup_key == key,
                       Page.noted_through < through)
                .values(noted_through=through)
            )  # fmt: skip

    def _mark(self, job_id: int) -> None:
        with self.db.write() as session:
            mark_delivery_started(session, job_id)

    async def notes(self, job: Job) -> Outcome:
        key, through = job.payload["dedup_key"], int(job.payload.get("through", 0))
        page, rows = await asyncio.to_thread(self._unnoted, key, through)
        if page is None:
            return Done()
        there: set[str] = set()
        if job.delivery_started:
            # An earlier run got as far as sending: read what landed before sending again.
            answer = await self.opsgenie.notes(key)
            if not 200 <= answer.status < 300:
                return outcome(job, "opsgenie", answer)
            data = answer.body.get("data") if isinstance(answer.body, dict) else None
            there = {str(n.get("note", "")) for n in data or [] if isinstance(n, dict)}
        else:
            await asyncio.to_thread(self._mark, job.id)
        for row in rows:
            text = timeline_text(row)
            if text:
                note = plain(text) + NOTE_MARK.format(row.id)
                if not any(n.endswith(NOTE_MARK.format(row.id)) for n in there):
                    result, _ = await self._send(
                        job,
                        self.opsgenie.act(key, "notes", {"note": note, "source": "Securitybot"}),
                    )
                    if not isinstance(result, Done):
                        return result
                    metrics.PAGES_SENT.labels("opsgenie", "note").inc()
            await asyncio.to_thread(self._noted, key, row.id)
        return Done()

    # -- back from PagerDuty --------------------------------------------------------------------
    async def webhook_event(self, job: Job) -> Outcome:
        return await act_on_event(self, job)

    def apply_claim(self, alert_id: int, slack_user: str, details: dict[str, Any]) -> None:
        apply_by_id(self.db, alert_id, Event(EventType.CLAIMED, actor=slack_user),
                    audit_details={"via": "pagerduty", **details})  # fmt: skip
        self.wake()
