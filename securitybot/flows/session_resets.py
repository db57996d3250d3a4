"""Outbox handler that signs a compromised user out of Slack everywhere (``reset_sessions``) and
records how it went, in the audit log, the webhooks and the escalation post's timeline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from securitybot.flows import webhooks
from securitybot.flows.handler_core import HandlerCore
from securitybot.outbox.dispatcher import Done, GiveUp, Handler, Job, Outcome
from securitybot.slack.gateway import SlackPermanentError, SlackRetryLater
from securitybot.slack.retry_later import retry_later
from securitybot.slack.session_reset import SessionResetUnavailable
from securitybot.store import alerts as alert_store
from securitybot.store.models import Alert
from securitybot.store.outbox import enqueue


@dataclass
class SessionResets:
    """Session resets, on the same core as the DM handlers (``h``)."""

    h: HandlerCore

    def handlers(self) -> dict[str, Handler]:
        return {"reset_sessions": self.reset_sessions}

    async def reset_sessions(self, job: Job) -> Outcome:
        alert = await self.h.load(job.alert_id)
        if alert is None or not alert.user_id or self.h.slack is None:
            return GiveUp("no Slack user to reset")
        try:
            await self.h.slack.reset_sessions(alert.user_id)
        except SlackRetryLater as exc:
            return retry_later(job, exc)
        except SessionResetUnavailable as exc:
            # No token can do it (a workspace outside Grid): said once, in the audit log and
            # the escalation post, and never retried.
            await asyncio.to_thread(self._reset_failed, alert, exc.details())
            self.h.wake()
            return Done()
        except SlackPermanentError as exc:
            await asyncio.to_thread(self._reset_failed, alert, {"error": exc.error})
            self.h.wake()
            return GiveUp(str(exc))
        await asyncio.to_thread(self._sessions_reset, alert)
        self.h.wake()
        return Done()

    def _reset_failed(self, alert: Alert, details: dict[str, Any]) -> None:
        with self.h.db.write() as session:
            alert_store.audit(session, alert_id=alert.id, actor="system",
                              action="user.sessions_reset_failed", details=details,
                              subject_user=alert.user_id)  # fmt: skip
            self._show_reset(session, alert)

    def _sessions_reset(self, alert: Alert) -> None:
        with self.h.db.write() as session:
            alert_store.audit(
                session,
                alert_id=alert.id,
                actor="system",
                action="user.sessions_reset",
                details={"user": alert.user_id},
                subject_user=alert.user_id,
            )
            webhooks.enqueue_for(session, alert, ["sessions_reset"])
            self._show_reset(session, alert)

    @staticmethod
    def _show_reset(session: Session, alert: Alert) -> None:
        """The escalation post's timeline shows how the reset went: the update the triage
        queued may have rendered before it was done."""
        enqueue(session, effect="update_escalation", alert_id=alert.id,
                idempotency_key=f"reset-shown:{alert.id}")  # fmt: skip
