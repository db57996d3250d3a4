"""Bolt listeners: the user's buttons and text replies. Thin: ack, check who, call a flow."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltResponse
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from securitybot.domain import Event, EventType
from securitybot.flows import denials, dm_changes
from securitybot.flows.events import apply_by_id
from securitybot.i18n import ENGLISH, LocaleOf, Translator
from securitybot.i18n.answers import parse_reply
from securitybot.slack import messages
from securitybot.slack import mrkdwn as md
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert
from securitybot.store.outage import RETRY_AFTER_SECONDS, is_unavailable

logger = logging.getLogger(__name__)

__all__ = ["parse_reply", "register"]


async def _english(user_id: str) -> Translator:
    return ENGLISH


def pushed_text(t: Translator, provider: str) -> str:
    return t.gettext("Thanks! {provider} push sent to your phone; approve it to close the "
                     "alert.").format(provider=provider)  # fmt: skip


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


def register(
    app: AsyncApp, db: Database, wake: Callable[[], None], provider: str = "Duo",
    locale_of: LocaleOf = _english,
) -> None:  # fmt: skip
    """``provider`` names the push the user is sent ("Duo", "Okta Verify"); ``locale_of``
    finds the language each person is answered in."""

    async def answer(
        alert: Alert, user: str, confirmed: bool | EventType, comment: str | None, via: str,
        reply_ts: str | None = None,
    ) -> None:  # fmt: skip
        if isinstance(confirmed, EventType):
            kind = confirmed
        else:
            kind = EventType.USER_CONFIRMED if confirmed else EventType.USER_DENIED
        event = Event(kind, actor=user, comment=comment)
        # The reply's ts ties a later deletion or edit of that message to this answer.
        details = {"via": via, **({"reply_ts": reply_ts} if reply_ts else {})}
        await asyncio.to_thread(apply_by_id, db, alert.id, event, audit_details=details)
        wake()

    async def on_button(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                        confirmed: bool | EventType) -> None:  # fmt: skip
        await ack()
        user = body["user"]["id"]
        action = body["actions"][0]
        raw = str(action.get("value", ""))
        alert = await asyncio.to_thread(_load, db, int(raw)) if raw.isdigit() else None
        channel = (body.get("channel") or {}).get("id") or user
        _ = (await locale_of(user)).gettext
        if alert is None:
            await client.chat_postEphemeral(
                channel=channel, user=user, text=_("I can't find that alert any more.")
            )
            return
        if alert.user_id != user:
            # Only the implicated person may answer; anyone else is refused and it is logged.
            await asyncio.to_thread(_audit_refusal, db, alert, user, "button")
            await client.chat_postEphemeral(
                channel=channel, user=user,
                text=_("Only {user} can answer alert #{alert_id}. This attempt was logged.")
                .format(user=md.user(alert.user_id), alert_id=alert.id),
            )  # fmt: skip
            return
        if alert.status != "awaiting_ack":
            await client.chat_postEphemeral(
                channel=channel, user=user,
                text=_("Alert #{alert_id} is already answered (status: {status}).")
                .format(alert_id=alert.id, status=md.inline(alert.status, 64)),
            )  # fmt: skip
            return
        await answer(alert, user, confirmed, None, "button")
        if confirmed is True:
            await client.chat_postEphemeral(
                channel=channel, user=user, text=pushed_text(await locale_of(user), provider)
            )

    @app.action(messages.CONFIRM_ACTION)
    async def confirm_button(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await on_button(ack, body, client, True)

    @app.action(messages.DENY_ACTION)
    async def deny_button(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await on_button(ack, body, client, False)

    @app.action(messages.WRONG_PERSON_ACTION)
    async def wrong_person_button(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await on_button(ack, body, client, EventType.WRONG_PERSON)

    async def on_deleted(event: dict[str, Any]) -> None:
        channel = event.get("channel")
        deleted_ts = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts")
        if not channel or not deleted_ts:
            return
        applied = await asyncio.to_thread(
            dm_changes.message_deleted, db, str(channel), str(deleted_ts),
            event.get("event_ts") or event.get("ts"),
        )  # fmt: skip
        if applied is not None and applied.transition.changed:
            logger.warning("message %s deleted from the DM of alert %s: escalated", deleted_ts,
                           applied.alert.id)  # fmt: skip
            wake()

    async def on_edited(event: dict[str, Any]) -> None:
        new, old = event.get("message") or {}, event.get("previous_message") or {}
        channel, user, ts = event.get("channel"), new.get("user"), new.get("ts")
        # The bot's own chat.update and unfurls (text unchanged) are not the user's edits.
        if new.get("bot_id") or not (channel and user and ts) or new.get("text") == old.get("text"):
            return
        await asyncio.to_thread(
            dm_changes.reply_edited, db, str(channel), str(ts), str(user),
            str(new.get("text") or ""), old.get("text"),
        )  # fmt: skip

    @app.event("message")
    async def on_message(event: dict[str, Any], client: AsyncWebClient) -> None:
        if event.get("channel_type") != "im":
            return
        if event.get("subtype") == "message_deleted":
            return await on_deleted(event)
        if event.get("subtype") == "message_changed":
            return await on_edited(event)
        if event.get("bot_id") or event.get("subtype"):
            return
        user, channel, text = event.get("user"), event.get("channel"), event.get("text") or ""
        if not user or not channel:
            return
        kind, comment = parse_reply(text)
        t = await locale_of(user)
        _ = t.gettext
        if kind in ("help", "unknown"):
            prefix = "" if kind == "help" else _("Sorry, I didn't get that.") + " "
            await client.chat_postMessage(channel=channel, text=prefix + _(messages.HELP_TEXT))
            return
        alert = await asyncio.to_thread(_oldest_awaiting, db, user)
        if alert is None:
            await client.chat_postMessage(
                channel=channel, text=_("You have no open alerts waiting for an answer. Thanks!")
            )
            return
        about = _("About alert #{alert_id} ({title}):").format(
            alert_id=alert.id, title=md.inline(alert.title, 200)
        )
        ts = event.get("ts")
        if kind in ("deny", "confirm_denial"):
            now, comment = await asyncio.to_thread(
                denials.confirm_or_remember, db, alert, user, comment, ts,
                confirming=kind == "confirm_denial",
            )  # fmt: skip
            if not now:
                if kind == "confirm_denial":
                    await client.chat_postMessage(
                        channel=channel,
                        text=_("There is nothing to confirm.") + " " + _(messages.HELP_TEXT),
                    )
                    return
                # A mis-typed "no" must not page the team: ask once more first.
                await client.chat_postMessage(
                    channel=channel, text=f"{about} {_(messages.CONFIRM_DENIAL_TEXT)}"
                )
                return
            await answer(alert, user, False, comment, "text", ts)
        elif kind == "wrong_person":
            await answer(alert, user, EventType.WRONG_PERSON, comment, "text", ts)
        else:
            await answer(alert, user, True, comment, "text", ts)
        what = (
            pushed_text(t, provider)
            if kind == "confirm"
            else _("Thanks for telling me. The security team has been notified.")
        )
        answered = _("That answered alert #{alert_id} ({title}).").format(
            alert_id=alert.id, title=md.inline(alert.title, 200)
        )
        await client.chat_postMessage(channel=channel, text=f"{answered} {what}")

    @app.error
    async def on_error(
        error: Exception,
        body: dict[str, Any],
        respond: AsyncRespond | None = None,
        response: BoltResponse | None = None,
    ) -> None:
        # With the database down the receipts middleware fails before anything is acked: a
        # 503 (Slack retries it, as it does a 500) rather than a 500 that reads like a bug.
        # The outage log filter makes the line below one per interval.
        if response is not None and is_unavailable(error):
            response.status = 503
            response.headers["retry-after"] = [str(RETRY_AFTER_SECONDS)]
        logger.exception("Slack listener failed", exc_info=error)
