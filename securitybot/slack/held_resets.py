"""Bolt listeners for the held-resets escalation: a responder releases or discards them.

Like the triage buttons: only ``escalation.responders`` may act, nobody decides on a batch
that holds their own reset, and every refusal is audited (``triage.refused``). A click decides
on the count the message showed; if more were held since, the clicker is asked to look again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from securitybot.aer import budget
from securitybot.aer.held_message import DISCARD_ACTION, RELEASE_ACTION, parse_value
from securitybot.slack import mrkdwn as md
from securitybot.slack.triage import REFUSALS, Responders
from securitybot.store.aer_budget_models import AerHeldBatch
from securitybot.store.alerts import audit
from securitybot.store.db import Database
from securitybot.store.models import utcnow
from securitybot.store.outbox import enqueue

SELF_REFUSAL = (
    "These held resets include your own account; another responder must decide. This was logged."
)


def audit_refusal(db: Database, batch_id: int, actor: str, reason: str, what: str) -> None:
    with db.write() as session:
        batch = session.get(AerHeldBatch, batch_id)
        audit(
            session, action="triage.refused", actor=actor, org=batch.org if batch else None,
            details={"reason": reason, "action": what, "held_batch": batch_id},
        )  # fmt: skip


def _refresh(db: Database, batch_id: int) -> None:
    """Make sure an update of the message is queued (a click saw an older count)."""
    with db.write() as session:
        batch = session.get(AerHeldBatch, batch_id)
        if batch is not None:
            job = budget.update_job(batch.id, batch.version)
            enqueue(session, effect=job["effect"], payload=job["payload"],
                    idempotency_key=job["idempotency_key"])  # fmt: skip


def decide(
    db: Database, batch_id: int, *, release: bool, actor: str, via: dict[str, Any],
    shown: int | None,
) -> budget.Resolved:  # fmt: skip
    """Release or discard in one transaction (rolled back if :func:`budget.resolve` refuses)."""
    with db.read() as session:
        org = budget.org_of(session, batch_id)
    if org is None:
        raise budget.NotFound(str(batch_id))
    with db.write() as session:
        return budget.resolve(
            session, batch_id, org, release=release, actor=actor, via=via, now=utcnow(),
            shown=shown,
        )  # fmt: skip


def register(app: AsyncApp, db: Database, wake: Callable[[], None], responders: Responders) -> None:
    async def act(body: dict[str, Any], client: AsyncWebClient, release: bool) -> None:
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id") or user
        parsed = parse_value(str(body["actions"][0].get("value", "")))
        if parsed is None:
            return
        batch_id, shown = parsed
        what = "release_held_resets" if release else "discard_held_resets"

        async def say(text: str) -> None:
            await client.chat_postEphemeral(channel=channel, user=user, text=text)

        if not await responders.contains(user):
            await asyncio.to_thread(audit_refusal, db, batch_id, user, "not a responder", what)
            await say(REFUSALS["not a responder"])
            return
        via = {"via": "slack_button"}
        try:
            await asyncio.to_thread(
                decide, db, batch_id, release=release, actor=user, via=via, shown=shown
            )
        except budget.NotFound:
            return
        except budget.AlreadyResolved as exc:
            await say(f"These held resets were already {exc.status} by {md.user(exc.resolved_by)}.")
            return
        except budget.Changed as exc:
            await asyncio.to_thread(_refresh, db, batch_id)
            wake()
            await say(f"{exc.now} resets are held now, not the {exc.shown} this message showed. "
                      "It is being updated: look again, then decide.")  # fmt: skip
            return
        except budget.SelfInvolved:
            await asyncio.to_thread(audit_refusal, db, batch_id, user, "self", what)
            await say(SELF_REFUSAL)
            return
        wake()

    @app.action(RELEASE_ACTION)
    async def release(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await act(body, client, True)

    @app.action(DISCARD_ACTION)
    async def discard(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await act(body, client, False)
