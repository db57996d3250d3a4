"""Bolt listeners for a storm's message: a responder releases, discards or escalates it all.

Like the triage buttons: only ``escalation.responders`` may act, nobody decides on a storm that
holds an alert about themselves, and every refusal is audited (``triage.refused``). A click
decides on the count the message showed; if more were held since, the clicker looks again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from securitybot.slack import mrkdwn as md
from securitybot.slack.triage import REFUSALS, Responders
from securitybot.store.alerts import audit
from securitybot.store.db import Database
from securitybot.store.models import utcnow
from securitybot.store.storm_models import Storm
from securitybot.storms import decide as storms
from securitybot.storms.guard import queue_update
from securitybot.storms.message import ACTIONS, parse_value

SELF_REFUSAL = (
    "This storm holds an alert about you; another responder must decide. This was logged."
)


def audit_refusal(db: Database, storm_id: int, actor: str, reason: str, what: str) -> None:
    with db.write() as session:
        audit(session, action="triage.refused", actor=actor,
              details={"reason": reason, "action": what, "storm": storm_id})  # fmt: skip


def refresh(db: Database, storm_id: int) -> None:
    """Make sure an update of the message is queued (a click saw an older count)."""
    with db.write() as session:
        storm = session.get(Storm, storm_id)
        if storm is not None:
            queue_update(session, storm.id, storm.version)


def decide(
    db: Database, storm_id: int, *, action: str, actor: str, via: dict[str, Any],
    shown: int | None,
) -> storms.Resolved:  # fmt: skip
    """Decide in one transaction (rolled back if :func:`storms.resolve` refuses)."""
    with db.read() as session:
        key = storms.key_of(session, storm_id)
    if key is None:
        raise storms.NotFound(str(storm_id))
    with db.write() as session:
        return storms.resolve(session, storm_id, key, action=action, actor=actor, via=via,
                              now=utcnow(), shown=shown)  # fmt: skip


def register(app: AsyncApp, db: Database, wake: Callable[[], None], responders: Responders) -> None:
    async def act(body: dict[str, Any], client: AsyncWebClient, action: str) -> None:
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id") or user
        parsed = parse_value(str(body["actions"][0].get("value", "")))
        if parsed is None:
            return
        storm_id, shown = parsed
        what = f"{action}_storm"

        async def say(text: str) -> None:
            await client.chat_postEphemeral(channel=channel, user=user, text=text)

        if not await responders.contains(user):
            await asyncio.to_thread(audit_refusal, db, storm_id, user, "not a responder", what)
            await say(REFUSALS["not a responder"])
            return
        try:
            await asyncio.to_thread(decide, db, storm_id, action=action, actor=user,
                                    via={"via": "slack_button"}, shown=shown)  # fmt: skip
        except storms.NotFound:
            return
        except storms.AlreadyResolved as exc:
            await say(f"This storm was already {exc.status} by {md.user(exc.resolved_by)}.")
            return
        except storms.Changed as exc:
            await asyncio.to_thread(refresh, db, storm_id)
            wake()
            await say(f"{exc.now} alerts are held now, not the {exc.shown} this message showed. "
                      "It is being updated: look again, then decide.")  # fmt: skip
            return
        except storms.SelfInvolved:
            await asyncio.to_thread(audit_refusal, db, storm_id, user, "self", what)
            await say(SELF_REFUSAL)
            return
        wake()

    for action_id, action in ACTIONS.items():

        def make(action: str) -> Callable[..., Any]:
            async def handler(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
                await ack()
                await act(body, client, action)

            return handler

        app.action(action_id)(make(action))
