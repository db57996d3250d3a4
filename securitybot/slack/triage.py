"""Bolt listeners for the security channel (claim, benign, compromise) and for snoozing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from securitybot.config import EscalationConfig
from securitybot.domain import Event, EventType
from securitybot.flows import snoozes
from securitybot.flows.events import apply_by_id
from securitybot.i18n import ENGLISH, N_, Translator
from securitybot.slack import messages
from securitybot.slack import mrkdwn as md
from securitybot.slack.dates import slack_date
from securitybot.slack.gateway import SlackGateway
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert

logger = logging.getLogger(__name__)

NOTE_BLOCK = "note"
NOTE_ACTION = "note_input"


class Responders:
    """Who is on the security team: listed user ids, or members of listed user groups. An
    escalation routed to another channel (``escalation.routes``) may also be triaged by that
    route's responders: ``contains(user, channel)``."""

    def __init__(
        self,
        cfg: EscalationConfig,
        slack: SlackGateway,
        ttl: float = 300.0,
        *,
        ids: list[str] | None = None,
        team: str | None = None,
    ) -> None:
        ids = cfg.responders if ids is None else ids
        # A route's groups are its workspace's (team), read with its token; else the home's.
        self.team = team
        self.users = {r for r in ids if not r.startswith("S")}
        self.groups = [r for r in ids if r.startswith("S")]
        self._slack, self._ttl = slack, ttl
        self._members: tuple[float, set[str]] | None = None
        self.by_channel: dict[str, Responders] = {}
        if ids is cfg.responders:
            for route in cfg.routes:
                if route.responders:
                    self.by_channel[route.channel] = Responders(
                        cfg, slack, ttl, ids=list(route.responders), team=route.team_id
                    )

    async def contains(self, user_id: str, channel: str | None = None) -> bool:
        routed = self.by_channel.get(channel) if channel else None
        if routed is not None and await routed.contains(user_id):
            return True
        if user_id in self.users:
            return True
        if not self.groups:
            return False
        now = time.monotonic()
        if self._members is None or now - self._members[0] > self._ttl:
            members: set[str] = set()
            for group in self.groups:
                members |= await self._slack.usergroup_members(group, team=self.team)
            self._members = (now, members)
        return user_id in self._members[1]


def benign_modal(alert: Alert, t: Translator = ENGLISH) -> dict[str, Any]:
    """The modal asking a responder why an alert is benign (labels are plain text), in the
    team's language."""
    _ = t.gettext
    return {
        "type": "modal", "callback_id": messages.BENIGN_MODAL,
        "private_metadata": str(alert.id),
        "title": {"type": "plain_text", "text": md.clip_plain(_("Resolve as benign"), 24)},
        "submit": {"type": "plain_text", "text": md.clip_plain(_("Resolve"), 24)},
        "blocks": [
            {
                "type": "input", "block_id": NOTE_BLOCK,
                "label": {"type": "plain_text",
                          "text": _("Why is alert #{alert_id} benign?").format(alert_id=alert.id)},
                "element": {"type": "plain_text_input", "action_id": NOTE_ACTION,
                            "multiline": True},
            },
        ],
    }  # fmt: skip


# Read by whoever clicked, in the team's language (``i18n.team_locale``): translated where shown.
REFUSALS = {
    "not a responder": N_(
        "Only the security team can triage escalations. This attempt was logged."
    ),
    "self": N_(
        "You can't triage an alert about yourself; another responder must. This was logged."
    ),
}


def triage_refusal(actor: str, subject: str | None, *, is_responder: bool) -> str | None:
    """Why ``actor`` may not triage an alert about ``subject`` (a key of REFUSALS), or None.

    Nobody judges their own alert: a compromised responder account must not be able to close
    the escalation about itself.
    """
    if not is_responder:
        return "not a responder"
    if subject is not None and actor == subject:
        return "self"
    return None


def _load(db: Database, alert_id: int) -> Alert | None:
    with db.read() as session:
        return alert_store.get(session, alert_id)


def _audit(db: Database, alert_id: int, actor: str, action: str, details: dict[str, Any]) -> None:
    with db.write() as session:
        alert_store.audit(session, alert_id=alert_id, actor=actor, action=action, details=details)


def _create_snooze(db: Database, alert_id: int, duration: str, actor: str) -> str:
    with db.write() as session:
        alert = alert_store.get(session, alert_id)
        if alert is None or alert.user_id != actor:
            return "Only the person this alert was about can snooze it."
        if not snoozes.can_snooze(alert):
            return "This alert cannot be snoozed."
        snooze = snoozes.create(session, alert, duration, actor)
        scope = snoozes.scope_of(alert).items()
        shown = ", ".join(f"{md.inline(k, 40)} {md.code(v, 100)}" for k, v in scope)
        return (
            f"Snoozed {md.code(alert.kind, 66)} alerts for {shown} until "
            f"{slack_date(snooze.expires_at)}. The security team can see and revoke this."
        )


def register(
    app: AsyncApp, db: Database, wake: Callable[[], None], responders: Responders,
    t: Translator = ENGLISH,
) -> None:  # fmt: skip
    """The triage buttons and the benign modal; ``t``: the team's language."""

    async def refused(alert: Alert, user: str, what: str) -> str | None:
        """The refusal text after auditing it, or None when ``user`` may triage ``alert``."""
        may = await responders.contains(user, alert.escalation_channel)
        reason = triage_refusal(user, alert.user_id, is_responder=may)
        if reason is None:
            return None
        await asyncio.to_thread(
            _audit, db, alert.id, user, "triage.refused", {"reason": reason, "action": what}
        )
        return t.gettext(REFUSALS[reason])

    async def guard(body: dict[str, Any], client: AsyncWebClient, what: str) -> Alert | None:
        user = body["user"]["id"]
        raw = str(body["actions"][0].get("value", ""))
        channel = (body.get("channel") or {}).get("id") or user
        alert = await asyncio.to_thread(_load, db, int(raw)) if raw.isdigit() else None
        if alert is None:
            return None
        text = await refused(alert, user, what)
        if text is not None:
            await client.chat_postEphemeral(channel=channel, user=user, text=text)
            return None
        return alert

    async def act(alert: Alert, event: EventType, user: str, comment: str | None = None) -> None:
        await asyncio.to_thread(
            apply_by_id, db, alert.id, Event(event, actor=user, comment=comment)
        )
        wake()

    @app.action(messages.CLAIM_ACTION)
    async def claim(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        alert = await guard(body, client, "claim")
        if alert is not None:
            await act(alert, EventType.CLAIMED, body["user"]["id"])

    @app.action(messages.COMPROMISE_ACTION)
    async def compromise(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        alert = await guard(body, client, "confirm_compromise")
        if alert is not None:
            await act(alert, EventType.CONFIRMED_COMPROMISE, body["user"]["id"])

    @app.action(messages.BENIGN_ACTION)
    async def benign(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        alert = await guard(body, client, "resolve_benign")
        if alert is None:
            return
        await client.views_open(trigger_id=body["trigger_id"], view=benign_modal(alert, t))

    @app.view(messages.BENIGN_MODAL)
    async def benign_submitted(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]
        note = (
            (((view.get("state") or {}).get("values") or {}).get(NOTE_BLOCK) or {})
            .get(NOTE_ACTION, {})
            .get("value")
        )
        if not note or not str(note).strip():
            await ack(response_action="errors", errors={NOTE_BLOCK: t.gettext("Please say why.")})
            return
        raw = str(view.get("private_metadata", ""))
        alert = await asyncio.to_thread(_load, db, int(raw)) if raw.isdigit() else None
        if alert is None:
            await ack()
            return
        # Checked again on submit: the modal may outlive a change of team, or be forged.
        text = await refused(alert, user, "resolve_benign")
        if text is not None:
            await ack(response_action="errors", errors={NOTE_BLOCK: text})
            return
        await ack()
        await act(alert, EventType.RESOLVED_BENIGN, user, str(note).strip())

    async def snooze(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, d: str) -> None:
        await ack()
        user = body["user"]["id"]
        raw = str(body["actions"][0].get("value", ""))
        channel = (body.get("channel") or {}).get("id") or user
        if not raw.isdigit():
            return
        text = await asyncio.to_thread(_create_snooze, db, int(raw), d, user)
        await client.chat_postEphemeral(channel=channel, user=user, text=text)

    @app.action(messages.SNOOZE_HOUR_ACTION)
    async def snooze_hour(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await snooze(ack, body, client, "1h")

    @app.action(messages.SNOOZE_DAY_ACTION)
    async def snooze_day(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await snooze(ack, body, client, "1d")
