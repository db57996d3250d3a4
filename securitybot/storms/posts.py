"""Outbox handlers for a storm's message: one post per storm, then updates in place.

Only the post job posts (once, even across a lost outcome: ``post_once``); every change to the
storm (more alerts held, a decision) enqueues an update, and both converge on the newest
version, so the message never shows a count older than the last one written.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from securitybot.config import Settings
from securitybot.outbox.dispatcher import Done, GiveUp, Handler, Job, Outcome, RetryAt, backoff
from securitybot.slack.gateway import SlackGateway, SlackPermanentError, SlackRetryLater
from securitybot.slack.post_once import post_once
from securitybot.store.db import Database
from securitybot.store.models import utcnow
from securitybot.store.storm_models import Storm
from securitybot.storms.guard import POST_EFFECT, UPDATE_EFFECT, held_users
from securitybot.storms.message import storm_message

_CONVERGE_ROUNDS = 5


def _retry(exc: SlackRetryLater, attempts: int) -> RetryAt:
    delay = timedelta(seconds=exc.retry_after) if exc.retry_after else backoff(attempts + 1)
    return RetryAt(utcnow() + delay, str(exc), failure=exc.spends_attempt)


class StormPosts:
    def __init__(self, db: Database, settings: Settings, slack: SlackGateway | None) -> None:
        self.db, self.settings, self.slack = db, settings, slack
        self._locks: dict[int, asyncio.Lock] = {}

    def handlers(self) -> dict[str, Handler]:
        return {POST_EFFECT: self.post, UPDATE_EFFECT: self.update}

    def _load(self, storm_id: int) -> tuple[Storm, list[str]] | None:
        with self.db.read() as session:
            storm = session.get(Storm, storm_id)
            if storm is None:
                return None
            session.expunge(storm)
            return storm, held_users(session, storm_id)

    def _shown(self, storm_id: int, version: int, channel: str | None, ts: str | None) -> None:
        """What Slack shows now: the last version written (not the highest), so a stale
        update that landed after a newer one is noticed and written over."""
        with self.db.write() as session:
            storm = session.get(Storm, storm_id, with_for_update=True)
            if storm is not None:
                storm.shown_version = version
                storm.channel, storm.ts = channel or storm.channel, ts or storm.ts

    def _mention(self) -> str | None:
        ref = self.settings.escalation.mention
        if not ref:
            return None
        if ref in ("here", "channel"):
            return f"<!{ref}>"
        return f"<!subteam^{ref}>" if ref.startswith("S") else f"<@{ref}>"

    def _render(self, storm: Storm, users: list[str]) -> tuple[str, list[dict[str, Any]]]:
        return storm_message(storm, users, self._mention() if storm.status == "open" else None)

    async def post(self, job: Job) -> Outcome:
        channel = self.settings.slack.security_channel
        if self.slack is None or not channel:
            return GiveUp("no Slack security channel to show the storm in (the API, the "
                          "dashboard and App Home still list it)")  # fmt: skip
        storm_id = int(job.payload["storm_id"])
        async with self._locks.setdefault(storm_id, asyncio.Lock()):
            loaded = await asyncio.to_thread(self._load, storm_id)
            if loaded is None:
                return GiveUp(f"storm {storm_id} is gone")
            storm, users = loaded
            try:
                if storm.ts is None:
                    text, blocks = self._render(storm, users)
                    key = {"storm": storm_id, "kind": "storm"}
                    ts = await post_once(self.db, self.slack, job, channel, text, blocks, key)
                    await asyncio.to_thread(self._shown, storm_id, storm.version, channel, ts)
                await self._converge(storm_id)
            except SlackRetryLater as exc:
                return _retry(exc, job.attempts)
            except SlackPermanentError as exc:
                return RetryAt(utcnow() + backoff(job.attempts + 1, cap=600), str(exc))
        return Done()

    async def update(self, job: Job) -> Outcome:
        if self.slack is None:
            return GiveUp("Slack is not configured")
        storm_id = int(job.payload["storm_id"])
        async with self._locks.setdefault(storm_id, asyncio.Lock()):
            try:
                await self._converge(storm_id)
            except SlackRetryLater as exc:
                return _retry(exc, job.attempts)
            except SlackPermanentError as exc:
                return GiveUp(str(exc))
        return Done()

    async def _converge(self, storm_id: int) -> None:
        """Update the message until it shows the storm's newest version. Before the first
        post there is nothing to update: the post job shows whatever is newest when it runs."""
        assert self.slack is not None
        for _ in range(_CONVERGE_ROUNDS):
            loaded = await asyncio.to_thread(self._load, storm_id)
            if loaded is None:
                return
            storm, users = loaded
            if storm.ts is None or storm.channel is None or storm.shown_version >= storm.version:
                return
            text, blocks = self._render(storm, users)
            await self.slack.update(storm.channel, storm.ts, text, blocks)
            await asyncio.to_thread(self._shown, storm_id, storm.version, None, None)
