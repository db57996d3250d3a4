"""The AER response orchestrator: outbox handlers that reset, tell, escalate and ask.

Decisions are taken and recorded in SQL first (service.py); these handlers only carry them out,
so a crash or a Slack outage delays a response but never loses or doubles it: every handler is
safe to run again, and the outbox retries them with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import Any

from securitybot.aer import store
from securitybot.aer.metrics import RESETS
from securitybot.aer.notify import NOTIFY_EFFECT, render
from securitybot.aer.reason import shown
from securitybot.config import Settings
from securitybot.i18n import ENGLISH, LocaleOf, Translator, translator
from securitybot.ingest.schema import AlertIn
from securitybot.ingest.service import ingest_alert
from securitybot.kinds import KindRegistry
from securitybot.outbox.dispatcher import Done, GiveUp, Handler, Job, Outcome
from securitybot.slack import mrkdwn as md
from securitybot.slack.gateway import SlackGateway, SlackPermanentError, SlackRetryLater
from securitybot.slack.retry_later import retry_later
from securitybot.slack.session_reset import UNAVAILABLE, SessionResetUnavailable, why_text
from securitybot.store.aer_models import AerNotification
from securitybot.store.alerts import audit
from securitybot.store.db import Database
from securitybot.store.models import utcnow
from securitybot.store.outbox import enqueue

logger = logging.getLogger(__name__)

RESET_EFFECT = "aer_reset"
DM_EFFECT = "aer_dm_user"
ESCALATE_EFFECT = "aer_escalate"
ASK_EFFECT = "aer_ask_user"
RESET_ACTION = "user_sessions_reset_by_anomaly_event_response"
ACTOR = "securitybot:aer"
# Slack refuses these for good; a human has to contain the account another way.
_UNRESETTABLE = {"cannot_reset_primary_owner", "cannot_reset_bot", UNAVAILABLE}


def audit_record(p: dict[str, Any], at_epoch: int) -> dict[str, Any]:
    """The reset, shaped like a Slack Audit Logs entry so the same tooling reads both."""
    return {
        "id": str(uuid.uuid4()),
        "date_create": at_epoch,
        "action": RESET_ACTION,
        "actor": {"type": "app", "app": {"id": "securitybot", "name": "Securitybot AER"}},
        "entity": {"type": "user", "user": {"id": p["user"]}},
        "context": {
            "location": {"type": "workspace", "id": p["org"]},
            "session_id": p.get("session"),
            "ip_address": p.get("ip"),
            "ua": p.get("user_agent"),
        },
        "details": {
            "reason": [p["type"]],
            "rule": p["rule"],
            "observed": p["observed"],
            "threshold": p.get("threshold"),
            "explanation": p["reason"],
            "anomaly_id": p["anomaly_id"],
            "sessions_reset": p.get("sessions", []),
        },
    }


def signed_out_text(p: dict[str, Any], t: Translator = ENGLISH) -> str:
    """The DM after a reset, in the person's language. The anomaly's fields come from Slack's
    logs: shown, never parsed."""
    kind, rule = md.inline(p["type"], 64), md.inline(p["rule"], 100)
    if p.get("ip"):
        text = t.gettext(
            "For your security, Securitybot signed you out of Slack on all your devices. We "
            "noticed unusual activity on your account: {type} ({rule}, from {ip}). Please sign "
            "in again. If this was not you, tell the security team right away."
        ).format(type=kind, rule=rule, ip=md.code(p["ip"], 66))
    else:
        text = t.gettext(
            "For your security, Securitybot signed you out of Slack on all your devices. We "
            "noticed unusual activity on your account: {type} ({rule}). Please sign in again. "
            "If this was not you, tell the security team right away."
        ).format(type=kind, rule=rule)
    return md.fallback(text)


def escalation_reason(p: dict[str, Any], t: Translator = ENGLISH) -> str:
    """Why AER escalates, as mrkdwn: the anomaly's reason and, when Slack refused the reset,
    what it answered (a code) and, when no token could reset the person, where and why. The
    reason is in ``t``'s language when the payload carries it as a message (``reason_i18n``;
    payloads queued before it existed show their English)."""
    reason = shown(p["reason"], p.get("reason_i18n"), t)
    refused = p.get("refused")
    if not isinstance(refused, dict):
        return reason
    error = md.inline(refused.get("error") or "", 80)
    if not refused.get("workspace"):
        return f"{reason}; {error}"
    return t.gettext("{reason}; {error} in workspace {workspace} ({team}): {why}").format(
        reason=reason, error=error, workspace=md.inline(refused["workspace"], 80),
        team=md.inline(refused.get("team") or "", 80), why=why_text(refused, t),
    )  # fmt: skip


def escalation_text(p: dict[str, Any], t: Translator = ENGLISH) -> str:
    """The post to the security channel, in the team's language."""
    text = t.gettext(
        "AER escalation for {user} (org {org}): {type} ({rule}). {reason}. A human needs to "
        "look at this account."
    ).format(
        user=md.user(p["user"]), org=md.code(p["org"], 66), type=md.inline(p["type"], 64),
        rule=md.inline(p["rule"], 100), reason=escalation_reason(p, t),
    )  # fmt: skip
    return md.fallback(f":warning: {text}")


class Responder:
    def __init__(
        self, db: Database, settings: Settings, kinds: KindRegistry, slack: SlackGateway | None,
        wake: Callable[[], None] = lambda: None, locale_of: LocaleOf | None = None,
    ) -> None:  # fmt: skip
        self.db, self.settings, self.kinds, self.slack = db, settings, kinds, slack
        self.wake = wake
        # A person's language (flows/locales.py; English without it) and the team's.
        self.locale_of = locale_of
        self.team_t = translator(settings.i18n.team_locale)
        # One in-process lock per notification: its first post must finish before an update.
        self._locks: dict[int, asyncio.Lock] = {}

    def handlers(self) -> dict[str, Handler]:
        return {
            RESET_EFFECT: self.reset,
            DM_EFFECT: self.dm_user,
            ESCALATE_EFFECT: self.escalate,
            NOTIFY_EFFECT: self.notify,
            ASK_EFFECT: self.ask_user,
        }

    async def _person_t(self, user_id: str) -> Translator:
        """``user_id``'s language, as for their alert DMs."""
        if self.locale_of is None or not user_id:
            return ENGLISH
        return await self.locale_of(user_id)

    def _escalate_now(
        self, p: dict[str, Any], why: str, unavailable: SessionResetUnavailable | None = None
    ) -> None:
        """The reset was refused: escalate, and take it out of the user's reset history.
        ``unavailable``: no token can reset people of their workspace, said with its name in
        the escalation and the audit log. The escalation is worded when it is posted, in the
        team's language, from ``refused``."""
        RESETS.labels("refused").inc()
        refused: dict[str, Any] = {"error": why}
        if unavailable is not None:
            refused.update(unavailable.details(), error=why)
        with self.db.write() as session:
            store.set_response(session, p["anomaly_id"], why[:64])
            sessions = p.get("sessions") or []
            store.revoke_reset(session, p["org"], p["user"], p["anomaly_id"], sessions)
            if unavailable is not None:
                audit(session, action="user.sessions_reset_failed", actor=ACTOR, org=p["org"],
                      subject_user=p["user"],
                      details={**unavailable.details(), "anomaly_id": p["anomaly_id"]})  # fmt: skip
            enqueue(
                session, effect=ESCALATE_EFFECT,
                payload={**p, "refused": refused},
                idempotency_key=f"aer-escalate-reset:{p['anomaly_id']}",
            )  # fmt: skip

    async def reset(self, job: Job) -> Outcome:
        p = job.payload
        if self.slack is None:
            await asyncio.to_thread(self._escalate_now, p, "reset_refused:slack_not_configured")
            return GiveUp("Slack is not configured; escalated instead")
        try:
            await self.slack.reset_sessions(p["user"])
        except SlackRetryLater as exc:
            return retry_later(job, exc)
        except SlackPermanentError as exc:
            unavailable = exc if isinstance(exc, SessionResetUnavailable) else None
            await asyncio.to_thread(
                self._escalate_now, p, f"reset_refused:{exc.error}", unavailable
            )
            self.wake()
            if exc.error in _UNRESETTABLE:
                return Done()
            return GiveUp(f"{exc}; escalated instead")
        await asyncio.to_thread(self._after_reset, p)
        self.wake()
        return Done()

    def _after_reset(self, p: dict[str, Any]) -> None:
        now = utcnow()
        with self.db.write() as session:
            # A retry after a crash resets again (harmless) but must not audit twice.
            if store.set_response(session, p["anomaly_id"], "reset_done") == "reset_done":
                return
            RESETS.labels("done").inc()
            audit(
                session, action=RESET_ACTION, actor=ACTOR, org=p["org"], subject_user=p["user"],
                details=audit_record(p, int(now.timestamp())), at=now,
            )  # fmt: skip
            enqueue(
                session, effect=DM_EFFECT, payload=p,
                idempotency_key=f"aer-dm:{p['anomaly_id']}",
            )  # fmt: skip

    async def dm_user(self, job: Job) -> Outcome:
        p = job.payload
        if self.slack is None:
            return GiveUp("Slack is not configured")
        text = signed_out_text(p, await self._person_t(p["user"]))
        try:
            channel = await self.slack.open_dm(p["user"])
            await self.slack.post(channel, text)
        except SlackRetryLater as exc:
            return retry_later(job, exc)
        except SlackPermanentError as exc:
            return GiveUp(str(exc))
        return Done()

    async def escalate(self, job: Job) -> Outcome:
        p = job.payload
        channel = self.settings.slack.security_channel
        if self.slack is None or channel is None:
            return GiveUp("no Slack security channel configured to escalate to")
        text = escalation_text(p, self.team_t)
        try:
            await self.slack.post(channel, text)
        except SlackRetryLater as exc:
            return retry_later(job, exc)
        except SlackPermanentError as exc:
            return GiveUp(str(exc))
        return Done()

    def _load(self, nid: int) -> AerNotification | None:
        with self.db.read() as session:
            row = session.get(AerNotification, nid)
            if row is not None:
                session.expunge(row)
            return row

    def _shown(self, nid: int, count: int, channel: str | None, ts: str | None) -> None:
        with self.db.write() as session:
            row = session.get(AerNotification, nid, with_for_update=True)
            if row is not None:
                row.shown_count = max(row.shown_count, count)
                row.channel, row.ts = channel or row.channel, ts or row.ts

    async def notify(self, job: Job) -> Outcome:
        nid = int(job.payload["notification_id"])
        if self.slack is None:
            return GiveUp("Slack is not configured")
        lock = self._locks.setdefault(nid, asyncio.Lock())
        async with lock:
            row = await asyncio.to_thread(self._load, nid)
            if row is None:
                return GiveUp(f"notification {nid} is gone")
            if row.ts is not None and row.shown_count >= row.count:
                return Done()  # an earlier job already showed this count
            # A person (an org's primary owner, a security admin) reads it in their language.
            to_person = row.recipient[:1] in "UW"
            text = render(row, await self._person_t(row.recipient) if to_person else self.team_t)
            try:
                if row.ts is None or row.channel is None:
                    channel = row.recipient
                    if to_person:
                        channel = await self.slack.open_dm(channel)
                    ts = await self.slack.post(channel, text)
                    await asyncio.to_thread(self._shown, nid, row.count, channel, ts)
                else:
                    await self.slack.update(row.channel, row.ts, text)
                    await asyncio.to_thread(self._shown, nid, row.count, None, None)
            except SlackRetryLater as exc:
                return retry_later(job, exc)
            except SlackPermanentError as exc:
                return GiveUp(str(exc))
        return Done()

    async def ask_user(self, job: Job) -> Outcome:
        p = job.payload
        payload = AlertIn(
            kind="aer_anomaly",
            user=p["user"],
            title=f"Unusual activity on your Slack account: {p['type']}",
            description=p["reason"],
            dedup_key=f"aer:{p['anomaly_id']}",
            details={
                "anomaly_type": p["type"], "reason": p["rule"], "org": p["org"],
                "ip": p.get("ip"), "session": p.get("session"), "anomaly_id": p["anomaly_id"],
            },
        )  # fmt: skip
        await asyncio.to_thread(
            ingest_alert, self.db, payload, source="aer", kinds=self.kinds,
            policy=self.settings.policy,
        )  # fmt: skip
        self.wake()
        return Done()
