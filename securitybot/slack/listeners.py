"""Bolt listeners: the user's buttons and text replies. Thin: ack, check who, call a flow."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from securitybot.domain import Event, EventType
from securitybot.flows.events import apply_by_id
from securitybot.slack import messages
from securitybot.slack import mrkdwn as md
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert

logger = logging.getLogger(__name__)

_YES = {"ack", "acknowledge", "acknowledged", "yes", "y"}
_NO = {"no", "n", "nope"}
_WORD = re.compile(r"^\s*(not me|[a-zA-Z]+)\b[\s,.:;!-]*(.*)$", re.S)


def parse_reply(text: str) -> tuple[str, str | None]:
    """("confirm"|"deny"|"help"|"unknown", comment)."""
    m = _WORD.match(text or "")
    if not m:
        return "unknown", None
    word, rest = m.group(1).lower(), m.group(2).strip() or None
    if word in _YES:
        return "confirm", rest
    if word in _NO or word == "not me":
        return "deny", rest
    if word in {"help", "hi", "hello", "?"}:
        return "help", None
    return "unknown", None


def _oldest_awaiting(db: Database, user_id: str) -> Alert | None:
    with db.read() as session:
        return session.scalars(
            select(Alert)
            .where(
                Alert.user_id == user_id,
                Alert.status == "awaiting_ack",
                Alert.parent_id.is_(None),  # grouped alerts are answered through their parent
            )
            .order_by(Alert.created_at, Alert.id)
            .limit(1)
        ).first()


def _load(db: Database, alert_id: int) -> Alert | None:
    with db.read() as session:
        return alert_store.get(session, alert_id)


def _audit_refusal(db: Database, alert: Alert, actor: str, how: str) -> None:
    with db.write() as session:
        alert_store.audit(
            session, alert_id=alert.id, actor=actor, action="answer.refused",
            from_status=alert.status, to_status=alert.status,
            details={"reason": "not the implicated user", "via": how},
            subject_user=alert.user_id,
        )  # fmt: skip


def register(app: AsyncApp, db: Database, wake: Callable[[], None]) -> None:
    async def answer(
        alert: Alert, user: str, confirmed: bool, comment: str | None, via: str
    ) -> None:
        event = Event(
            EventType.USER_CONFIRMED if confirmed else EventType.USER_DENIED,
            actor=user,
            comment=comment,
        )
        await asyncio.to_thread(apply_by_id, db, alert.id, event, audit_details={"via": via})
        wake()

    async def on_button(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                        confirmed: bool) -> None:  # fmt: skip
        await ack()
        user = body["user"]["id"]
        action = body["actions"][0]
        raw = str(action.get("value", ""))
        alert = await asyncio.to_thread(_load, db, int(raw)) if raw.isdigit() else None
        channel = (body.get("channel") or {}).get("id") or user
        if alert is None:
            await client.chat_postEphemeral(
                channel=channel, user=user, text="I can't find that alert any more."
            )
            return
        if alert.user_id != user:
            # Only the implicated person may answer; anyone else is refused and it is logged.
            await asyncio.to_thread(_audit_refusal, db, alert, user, "button")
            await client.chat_postEphemeral(
                channel=channel, user=user,
                text=f"Only {md.user(alert.user_id)} can answer alert #{alert.id}. "
                "This attempt was logged.",
            )  # fmt: skip
            return
        if alert.status != "awaiting_ack":
            await client.chat_postEphemeral(
                channel=channel, user=user,
                text=f"Alert #{alert.id} is already answered (status: {alert.status}).",
            )  # fmt: skip
            return
        await answer(alert, user, confirmed, None, "button")
        if confirmed:
            await client.chat_postEphemeral(
                channel=channel, user=user,
                text="Thanks! I've sent a Duo push to your phone. Approve it to close this alert.",
            )  # fmt: skip

    @app.action(messages.CONFIRM_ACTION)
    async def confirm_button(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await on_button(ack, body, client, True)

    @app.action(messages.DENY_ACTION)
    async def deny_button(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await on_button(ack, body, client, False)

    @app.event("message")
    async def on_message(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return
        user, channel, text = event.get("user"), event.get("channel"), event.get("text") or ""
        if not user or not channel:
            return
        kind, comment = parse_reply(text)
        if kind in ("help", "unknown"):
            prefix = "" if kind == "help" else "Sorry, I didn't get that. "
            await client.chat_postMessage(channel=channel, text=prefix + messages.HELP_TEXT)
            return
        alert = await asyncio.to_thread(_oldest_awaiting, db, user)
        if alert is None:
            await client.chat_postMessage(
                channel=channel, text="You have no open alerts waiting for an answer. Thanks!"
            )
            return
        await answer(alert, user, kind == "confirm", comment, "text")
        what = (
            "Thanks! I've sent a Duo push to your phone; approve it to close the alert."
            if kind == "confirm"
            else "Thanks for telling me. The security team has been notified."
        )
        await client.chat_postMessage(
            channel=channel,
            text=f"That answered alert #{alert.id} ({md.inline(alert.title, 200)}). {what}",
        )

    @app.error
    async def on_error(
        error: Exception, body: dict[str, Any], respond: AsyncRespond | None = None
    ) -> None:
        logger.exception("Slack listener failed", exc_info=error)
