"""Outbox handlers that tell the security team: the escalation post in the security channel, its
updates and next-tier reposts, and the fallback webhook when Slack keeps failing (our generic JSON;
paging PagerDuty and Opsgenie is ``securitybot.paging``)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select, update

from securitybot.flows.handler_core import HandlerCore
from securitybot.flows.timeline import timeline_text
from securitybot.i18n import Translator, translator
from securitybot.kinds import always_mention, escalation_severity
from securitybot.masking import scrub
from securitybot.outbox.dispatcher import Done, GiveUp, Handler, Job, Outcome, RetryAt, backoff
from securitybot.slack import messages
from securitybot.slack import mrkdwn as md
from securitybot.slack.channels import CHANNEL_ERRORS
from securitybot.slack.gateway import SlackPermanentError, SlackRetryLater
from securitybot.slack.retry_later import retry_later
from securitybot.slack.routes import escalation_channel
from securitybot.store.models import Alert, AuditLog, utcnow
from securitybot.store.outbox import enqueue, mark_delivery_started
from securitybot.verify.base import PROVIDER_LABELS

logger = logging.getLogger(__name__)


@dataclass
class EscalationPosts:
    """The team's side of the conversation, on the same core as the DM handlers (``h``)."""

    h: HandlerCore

    def handlers(self) -> dict[str, Handler]:
        return {
            "post_escalation": self.post_escalation,
            "update_escalation": self.update_escalation,
            "fallback_webhook": self.fallback_webhook,
            "repost_escalation": self.repost_escalation,
        }

    def _timeline(self, alert_id: int) -> list[tuple[Any, str]]:
        with self.h.db.read() as session:
            rows = session.scalars(
                select(AuditLog).where(AuditLog.alert_id == alert_id).order_by(AuditLog.id)
            ).all()
        t = self._team()
        return [(r.created_at, line) for r in rows if (line := timeline_text(r, t))]

    def _team(self) -> Translator:
        return translator(self.h.settings.i18n.team_locale)  # what the security team reads

    def _mention(self, alert: Alert, tier: int | None = None) -> str | None:
        esc = self.h.settings.escalation
        ref: str | None = None
        if tier is not None and 0 < tier <= len(esc.tiers):
            ref = esc.tiers[tier - 1].mention
        elif esc.mention and (
            always_mention(alert.escalation_reason)
            or escalation_severity(self.h.kinds.get(alert.kind), alert.escalation_reason).value
            in esc.mention_severities
        ):
            ref = esc.mention
        return None if ref is None else md.mention_ref(ref)

    async def _render_escalation(
        self, alert: Alert, tier: int | None = None
    ) -> tuple[str, list[dict[str, Any]]]:
        timeline = await asyncio.to_thread(self._timeline, alert.id)
        grouped = await asyncio.to_thread(self.h._grouped, alert.id)
        return messages.escalation_message(
            alert, self.h.kinds.get(alert.kind), timeline, grouped=grouped,
            mention=self._mention(alert, tier if tier is not None else alert.escalation_tier),
            provider=PROVIDER_LABELS.get(self.h.verifier.name, "Duo"), t=self._team(),
        )  # fmt: skip

    async def _channel(self, job: Job, alert: Alert) -> tuple[str | None, bool]:
        """The channel the alert's escalation is posted in, and whether ``job``'s delivery
        mark was written with it. Routed once, before the first post, and kept with the mark
        in one write: a retry looks for (and posts) the escalation in that same channel, even
        when routing would now answer otherwise (the person's lookup failing falls back to
        the default channel, which would get a second post)."""
        if alert.escalation_channel:
            return alert.escalation_channel, False
        routed = await escalation_channel(self.h.settings, self.h.slack, alert.user_id)
        if self.h.slack is None or not routed:
            return routed, False
        kept = await asyncio.to_thread(self._keep_channel, alert.id, job.id, routed)
        return kept, True

    def _keep_channel(self, alert_id: int, job_id: int, channel: str) -> str:
        """Record ``channel`` as the alert's escalation channel unless one already is (kept
        by another escalation job), and mark ``job`` as about to post; the channel kept."""
        with self.h.db.write() as session:
            session.execute(
                update(Alert)
                .where(Alert.id == alert_id, Alert.escalation_channel.is_(None))
                .values(escalation_channel=channel)
            )  # fmt: skip
            mark_delivery_started(session, job_id)
            kept = session.scalar(select(Alert.escalation_channel).where(Alert.id == alert_id))
        return kept or channel

    async def post_escalation(self, job: Job) -> Outcome:
        alert = await self.h.load(job.alert_id)
        if alert is None:
            return Done()
        channel, marked = await self._channel(job, alert)
        if self.h.slack is None or not channel:
            logger.error("alert %s escalated but no Slack security channel is configured", alert.id)
            return GiveUp("slack.security_channel is not configured")
        text, blocks = await self._render_escalation(alert)
        try:
            if alert.escalation_ts and alert.escalation_channel:
                await self.h.slack.update(
                    alert.escalation_channel, alert.escalation_ts, text, blocks
                )
            else:
                ts = await self.h._post_once(job, channel, text, blocks, "escalation",
                                             marked=marked)  # fmt: skip
                await asyncio.to_thread(
                    self.h._set, alert.id, escalation_channel=channel, escalation_ts=ts
                )
        except (SlackRetryLater, SlackPermanentError) as exc:
            # An escalation must never be dropped: keep trying Slack, and after a few failures
            # also send it to the fallback webhook.
            logger.error("escalation of alert %s failed (attempt %s): %s", alert.id,
                         job.attempts + 1, exc)  # fmt: skip
            # A channel the bot is not in (or that is gone) stays so until someone fixes the
            # workspace: retries cannot help, so the fallback goes out now, not after a few.
            error = exc.error if isinstance(exc, SlackPermanentError) else None
            unusable = error in CHANNEL_ERRORS
            if unusable:
                logger.error("the bot cannot post to the security channel %s (%s): invite it "
                             "with /invite @Securitybot", channel, error)  # fmt: skip
            if unusable or job.attempts + 1 >= self.h.settings.escalation.fallback_after_failures:
                await asyncio.to_thread(self._enqueue_fallback, alert.id, str(exc))
            if isinstance(exc, SlackRetryLater):
                return retry_later(job, exc)
            return RetryAt(utcnow() + backoff(job.attempts + 1, cap=600), str(exc))
        return Done()

    def _enqueue_fallback(self, alert_id: int, error: str) -> None:
        if not self.h.settings.escalation.fallback_webhook:
            return
        with self.h.db.write() as session:
            enqueue(
                session,
                effect="fallback_webhook",
                alert_id=alert_id,
                payload={"slack_error": error},
                idempotency_key=f"fallback:{alert_id}",
            )
        self.h.wake()

    async def fallback_webhook(self, job: Job) -> Outcome:
        """POST the escalation as our own generic JSON (not PagerDuty's or Opsgenie's API)."""
        alert = await self.h.load(job.alert_id)
        url = self.h.settings.escalation.fallback_webhook
        if alert is None or not url:
            return Done()
        body = {
            "event": "securitybot.escalation", "alert_id": alert.id, "kind": alert.kind,
            "severity": escalation_severity(
                self.h.kinds.get(alert.kind), alert.escalation_reason).value,
            "title": alert.title,
            "description": alert.description, "user": alert.user_given, "user_id": alert.user_id,
            "reason": alert.escalation_reason, "status": alert.status,
            "dedup_key": f"securitybot-{alert.id}", "details": alert.details,
            "slack_error": job.payload.get("slack_error"),
        }  # fmt: skip
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                resp = await client.post(url, json=body)
        except httpx.HTTPError as exc:
            error = scrub(f"{type(exc).__name__}: {exc}", url)  # stored in the job and shown
            return RetryAt(utcnow() + backoff(job.attempts + 1), error)
        if resp.status_code >= 300:
            return RetryAt(utcnow() + backoff(job.attempts + 1), f"HTTP {resp.status_code}")
        await asyncio.to_thread(
            self.h._audit, alert, "escalation.fallback_sent", {"url_host": httpx.URL(url).host}
        )
        return Done()

    async def repost_escalation(self, job: Job) -> Outcome:
        """Nobody claimed in time: post again, mentioning the next tier."""
        alert = await self.h.load(job.alert_id)
        if alert is None or alert.status != "escalated" or self.h.slack is None:
            return Done()
        channel, marked = await self._channel(job, alert)
        if not channel:
            return Done()
        tier = int(job.payload.get("tier", 1))
        text, blocks = await self._render_escalation(alert, tier)
        try:
            ts = await self.h._post_once(job, channel, text, blocks, f"tier{tier}", marked=marked)
        except SlackRetryLater as exc:
            return retry_later(job, exc)
        except SlackPermanentError as exc:
            return RetryAt(utcnow() + backoff(job.attempts + 1, cap=600), str(exc))
        await asyncio.to_thread(self.h._set, alert.id, escalation_channel=channel, escalation_ts=ts)
        return Done()

    async def update_escalation(self, job: Job) -> Outcome:
        alert = await self.h.load(job.alert_id)
        if (
            alert is None
            or not alert.escalation_ts
            or not alert.escalation_channel
            or not self.h.slack
        ):
            return Done()
        text, blocks = await self._render_escalation(alert)
        return await self.h._deliver(
            job, self.h.slack.update(alert.escalation_channel, alert.escalation_ts, text, blocks)
        )
