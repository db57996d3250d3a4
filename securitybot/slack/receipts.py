"""Handle each Slack delivery once: Slack's retries and replayed requests change nothing.

Slack re-sends an event when it thinks we were slow or failed (same ``event_id``, headers
``X-Slack-Retry-Num``/``X-Slack-Retry-Reason``), and anyone who captured a signed request can
replay it within the five-minute signature window. A retried "yes" used to answer the *next*
open alert. One Bolt global middleware, running after signature verification, derives a key per
delivery and inserts it into ``slack_receipts`` (primary key, ``ON CONFLICT DO NOTHING``); if the
row already existed the request is acknowledged with 200 and goes no further. The table is
shared, so this holds across replicas and restarts.

Ordering: the receipt is written *before* any listener runs, so a retry that arrives while the
first delivery is still being worked on is already a duplicate. The cost is at-most-once
handling: if the work then fails, Slack (already acknowledged) does not retry and the receipt
would refuse it anyway. That fails closed: an alert whose answer was lost stays open and
escalates at its deadline. If the receipt cannot be written at all (database down) the request
fails with a 500 and Slack retries it later, rather than being handled without protection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, cast

from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from sqlalchemy import Table, delete

from securitybot import metrics
from securitybot.store.db import Database
from securitybot.store.models import SlackReceipt, utcnow
from securitybot.store.once import Every, fit_key, insert_once

logger = logging.getLogger(__name__)

# Slack retries at once, after 1 and after 5 minutes; signatures are accepted for 5 minutes.
# An hour is well past both, and keeps the table small.
KEEP = timedelta(hours=1)
PRUNE_EVERY = 300.0  # seconds between prunes, per process
RECEIPTS = cast(Table, SlackReceipt.__table__)


def _first(body: dict[str, Any], key: str) -> dict[str, Any]:
    items = body.get(key) or [{}]
    first = items[0] if isinstance(items, list) else {}
    return first if isinstance(first, dict) else {}


def delivery_key(body: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, key) naming one Slack delivery, or None for requests that are not deduplicated
    (url_verification, ssl_check, option lookups: they change nothing)."""
    kind = str(body.get("type") or "")
    user = (body.get("user") or {}).get("id") if isinstance(body.get("user"), dict) else None
    if kind == "event_callback" and body.get("event_id"):
        key = f"event:{body['event_id']}"
    elif kind == "block_actions" and _first(body, "actions").get("action_ts"):
        key = f"action:{_first(body, 'actions')['action_ts']}:{user}"
    elif kind == "view_submission" and isinstance(body.get("view"), dict):
        # Every submission gets a fresh trigger_id; a resubmission after a validation error is
        # a new delivery, while a replay repeats it.
        view = body["view"]
        key = f"view:{view.get('id')}:{body.get('trigger_id') or view.get('hash')}"
    elif body.get("trigger_id"):  # shortcuts, slash commands
        key = f"{kind or 'trigger'}:{body['trigger_id']}"
    else:
        return None
    return kind or "other", fit_key(key)


def record(db: Database, key: str, kind: str) -> bool:
    """Insert the receipt; True if this is the first time the key was seen."""
    with db.write() as session:
        return insert_once(session, RECEIPTS, {"key": key, "kind": kind, "received_at": utcnow()})


def prune(db: Database, keep: timedelta = KEEP) -> int:
    """Delete receipts older than ``keep``; returns how many went."""
    with db.write() as session:
        result = session.execute(
            delete(SlackReceipt).where(SlackReceipt.received_at < utcnow() - keep)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


class ReceiptMiddleware(AsyncMiddleware):
    """Bolt global middleware: the first delivery passes, any repeat is acknowledged and dropped."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Own threads: the receipt is on the path to Slack's 3-second acknowledgement, so it
        # must not queue behind handler work in the default pool.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="slack-receipts")
        self._prune = Every(PRUNE_EVERY)

    def _record(self, key: str, kind: str) -> bool:
        first = record(self.db, key, kind)
        if self._prune.due():
            prune(self.db)
        return first

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        if _own_message(req):
            return await req.context.ack()  # nothing to handle, so nothing to record
        found = delivery_key(req.body)
        if found is None:
            return await next()
        kind, key = found
        loop = asyncio.get_running_loop()
        first = await loop.run_in_executor(self._pool, self._record, key, kind)
        retry = _header(req, "x-slack-retry-num")
        if first:
            if retry:
                logger.info("Slack retry %s (%s) of an unseen delivery %s: handling it", retry,
                            _header(req, "x-slack-retry-reason"), key)  # fmt: skip
            return await next()
        metrics.SLACK_DUPLICATES.labels(kind).inc()
        logger.info("duplicate Slack delivery %s (retry %s, %s) acknowledged and ignored", key,
                    retry or "-", _header(req, "x-slack-retry-reason") or "replay")  # fmt: skip
        return BoltResponse(status=200, body="")

    def close(self) -> None:
        self._pool.shutdown(wait=False)


def _own_message(req: AsyncBoltRequest) -> bool:
    """The bot's own posts and edits in its DMs come back as events and change nothing.

    Bolt's built-in self-event filter is off because it would also drop the deletion of the
    bot's own question (Bolt takes the deleted message's author as the event's user), which
    must escalate; this filter keeps deletions.
    """
    event = req.body.get("event")
    auth = req.context.authorize_result
    if not isinstance(event, dict) or auth is None or event.get("subtype") == "message_deleted":
        return False
    inner = event.get("message")
    message: dict[str, Any] = inner if isinstance(inner, dict) else event
    bot_id, user = message.get("bot_id"), message.get("user")
    return bool((bot_id and bot_id == auth.bot_id) or (user and user == auth.bot_user_id))


def _header(req: AsyncBoltRequest, name: str) -> str | None:
    values = req.headers.get(name) or []
    return values[0] if values else None


def register(app: AsyncApp, db: Database) -> ReceiptMiddleware:
    middleware = ReceiptMiddleware(db)
    app.use(middleware)
    return middleware
