"""What the outbox handlers of the conversation share: the service's parts (database, settings,
kinds, Slack, the push verifier, the dispatcher's wake-up) and the small steps every handler
takes (load an alert, apply an event, deliver a Slack call, post once, audit). The DM side
(``conversation``) and the team's side (``escalation_posts``) both build on it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from securitybot.config import Settings
from securitybot.domain import Event
from securitybot.flows.events import apply_by_id
from securitybot.kinds import KindRegistry
from securitybot.outbox.dispatcher import Done, GiveUp, Job, Outcome
from securitybot.outbox.jobs import Handover, Wake
from securitybot.slack.gateway import SlackGateway, SlackPermanentError, SlackRetryLater
from securitybot.slack.post_once import post_once
from securitybot.slack.retry_later import retry_later
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert
from securitybot.store.outbox import mark_delivery_started
from securitybot.verify.base import Verifier


@dataclass
class HandlerCore:
    db: Database
    settings: Settings
    kinds: KindRegistry
    slack: SlackGateway | None
    verifier: Verifier
    wake: Wake  # wakes the dispatcher after new outbox rows
    # The dispatcher's side of jobs written leased to this process (set once it exists).
    handover: Handover | None = None

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

    def _set(self, alert_id: int, **values: Any) -> None:
        with self.db.write() as session:
            session.execute(update(Alert).where(Alert.id == alert_id).values(**values))

    async def _deliver(self, job: Job, call: Awaitable[Any]) -> Outcome:
        """Run one Slack call for a job: done, retry later, or give up (a permanent error)."""
        try:
            await call
        except SlackRetryLater as exc:
            return retry_later(job, exc)
        except SlackPermanentError as exc:
            return GiveUp(str(exc))
        return Done()

    async def _post_once(
        self, job: Job, channel: str, text: str, blocks: list[dict[str, Any]] | None, kind: str,
        *, marked: bool = False,
    ) -> str:  # fmt: skip
        """Post, tagged with the alert and delivery kind, at most once per job (post_once)."""
        assert self.slack is not None
        key = {"alert_id": job.alert_id, "kind": kind}
        return await post_once(self.db, self.slack, job, channel, text, blocks, key, marked=marked)

    def _mark_delivery_started(self, job_id: int, started: bool) -> None:
        with self.db.write() as session:
            mark_delivery_started(session, job_id, started=started)

    def _grouped(self, alert_id: int) -> list[Alert]:
        with self.db.read() as session:
            return list(
                session.scalars(select(Alert).where(Alert.parent_id == alert_id).order_by(Alert.id))
            )

    def _audit(self, alert: Alert, action: str, details: dict[str, Any]) -> None:
        with self.db.write() as session:
            alert_store.audit(session, alert_id=alert.id, actor="system", action=action,
                              details=details, subject_user=alert.user_id)  # fmt: skip
