"""Outbox handlers for the held-resets escalation: one post per batch, then updates in place.

Only the post job posts (once, even across a lost outcome: ``post_once``); every change to
the batch (more resets held, released, discarded) enqueues an update, and both converge on the
newest version of the batch, so the message never shows a count older than the last one
written, whichever replica runs which job.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from securitybot.aer.budget import HELD_POST_EFFECT, HELD_UPDATE_EFFECT, held_users
from securitybot.aer.held_message import held_message
from securitybot.config import Settings
from securitybot.outbox.dispatcher import Done, GiveUp, Handler, Job, Outcome, RetryAt, backoff
from securitybot.slack.gateway import SlackGateway, SlackPermanentError, SlackRetryLater
from securitybot.slack.post_once import post_once
from securitybot.store.aer_budget_models import AerHeldBatch
from securitybot.store.db import Database
from securitybot.store.models import utcnow

_CONVERGE_ROUNDS = 5


def _retry(exc: SlackRetryLater, attempts: int) -> RetryAt:
    delay = timedelta(seconds=exc.retry_after) if exc.retry_after else backoff(attempts + 1)
    return RetryAt(utcnow() + delay, str(exc), failure=exc.spends_attempt)


class HeldPosts:
    def __init__(self, db: Database, settings: Settings, slack: SlackGateway | None) -> None:
        self.db, self.settings, self.slack = db, settings, slack
        self._locks: dict[int, asyncio.Lock] = {}

    def handlers(self) -> dict[str, Handler]:
        return {HELD_POST_EFFECT: self.post, HELD_UPDATE_EFFECT: self.update}

    def _load(self, batch_id: int) -> tuple[AerHeldBatch, list[str]] | None:
        with self.db.read() as session:
            batch = session.get(AerHeldBatch, batch_id)
            if batch is None:
                return None
            session.expunge(batch)
            return batch, held_users(session, batch_id)

    def _shown(self, batch_id: int, version: int, channel: str | None, ts: str | None) -> None:
        """What Slack shows now: the last version written (not the highest), so a stale
        update that landed after a newer one is noticed and written over."""
        with self.db.write() as session:
            batch = session.get(AerHeldBatch, batch_id, with_for_update=True)
            if batch is not None:
                batch.shown_version = version
                batch.channel, batch.ts = channel or batch.channel, ts or batch.ts

    def _mention(self) -> str | None:
        ref = self.settings.escalation.mention
        if not ref:
            return None
        if ref in ("here", "channel"):
            return f"<!{ref}>"
        return f"<!subteam^{ref}>" if ref.startswith("S") else f"<@{ref}>"

    def _render(self, batch: AerHeldBatch, users: list[str]) -> tuple[str, list[dict[str, Any]]]:
        return held_message(batch, users, self._mention() if batch.status == "open" else None)

    async def post(self, job: Job) -> Outcome:
        channel = self.settings.slack.security_channel
        if self.slack is None or not channel:
            return GiveUp("no Slack security channel to show held resets in (the API and the "
                          "dashboard still list them)")  # fmt: skip
        batch_id = int(job.payload["batch_id"])
        async with self._locks.setdefault(batch_id, asyncio.Lock()):
            loaded = await asyncio.to_thread(self._load, batch_id)
            if loaded is None:
                return GiveUp(f"held resets {batch_id} are gone")
            batch, users = loaded
            try:
                if batch.ts is None:
                    text, blocks = self._render(batch, users)
                    key = {"aer_held_batch": batch_id, "kind": "aer_held"}
                    ts = await post_once(self.db, self.slack, job, channel, text, blocks, key)
                    await asyncio.to_thread(self._shown, batch_id, batch.version, channel, ts)
                await self._converge(batch_id)
            except SlackRetryLater as exc:
                return _retry(exc, job.attempts)
            except SlackPermanentError as exc:
                return RetryAt(utcnow() + backoff(job.attempts + 1, cap=600), str(exc))
        return Done()

    async def update(self, job: Job) -> Outcome:
        if self.slack is None:
            return GiveUp("Slack is not configured")
        batch_id = int(job.payload["batch_id"])
        async with self._locks.setdefault(batch_id, asyncio.Lock()):
            try:
                await self._converge(batch_id)
            except SlackRetryLater as exc:
                return _retry(exc, job.attempts)
            except SlackPermanentError as exc:
                return GiveUp(str(exc))
        return Done()

    async def _converge(self, batch_id: int) -> None:
        """Update the message until it shows the batch's newest version. Before the first
        post there is nothing to update: the post job shows whatever is newest when it runs."""
        assert self.slack is not None
        for _ in range(_CONVERGE_ROUNDS):
            loaded = await asyncio.to_thread(self._load, batch_id)
            if loaded is None:
                return
            batch, users = loaded
            if batch.ts is None or batch.channel is None or batch.shown_version >= batch.version:
                return
            text, blocks = self._render(batch, users)
            await self.slack.update(batch.channel, batch.ts, text, blocks)
            await asyncio.to_thread(self._shown, batch_id, batch.version, None, None)
