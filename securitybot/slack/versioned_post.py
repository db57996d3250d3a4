"""One Slack message per decision group (AER's held resets, a storm), posted once and then
updated in place.

Only the post job posts (once, even across a lost outcome: ``post_once``; the message an earlier
run posted is repainted, as it may show an older version); every change to the row (more held, a
decision) enqueues an update, and both converge on the row's newest ``version``, so the message
never shows a count older than the last one written, whichever replica runs which job.
Subclasses say which table, which effects and how the message reads.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Protocol

from sqlalchemy.orm import Session

from securitybot.config import Settings
from securitybot.outbox.dispatcher import Done, GiveUp, Handler, Job, Outcome, RetryAt, backoff
from securitybot.slack.gateway import SlackGateway, SlackPermanentError, SlackRetryLater
from securitybot.slack.mrkdwn import mention_ref
from securitybot.slack.post_once import deliver_once
from securitybot.slack.retry_later import retry_later
from securitybot.store.db import Database
from securitybot.store.models import utcnow

_CONVERGE_ROUNDS = 5
# shown_version of a message whose content is not known (below every version, from 0 up).
UNKNOWN_VERSION = -1


class Versioned(Protocol):
    status: str
    version: int
    shown_version: int
    channel: str | None
    ts: str | None


class VersionedPost:
    model: ClassVar[Any]  # the mapped class: a row with the Versioned columns
    id_key: ClassVar[str]  # the job payload's id key
    post_key: ClassVar[tuple[str, str]]  # post_once's (id name, kind): kept as first released
    post_effect: ClassVar[str]
    update_effect: ClassVar[str]
    what: ClassVar[str]  # "held resets 3", "storm 3": for the jobs' errors
    unlisted: ClassVar[str]  # why a missing security channel is not the end of it

    def __init__(self, db: Database, settings: Settings, slack: SlackGateway | None) -> None:
        self.db, self.settings, self.slack = db, settings, slack
        self._locks: dict[int, asyncio.Lock] = {}

    def people(self, session: Session, row_id: int) -> list[str]:
        raise NotImplementedError

    def message(
        self, row: Any, people: list[str], mention: str | None
    ) -> tuple[str, list[dict[str, Any]]]:
        raise NotImplementedError

    def handlers(self) -> dict[str, Handler]:
        return {self.post_effect: self.post, self.update_effect: self.update}

    def _load(self, row_id: int) -> tuple[Any, list[str]] | None:
        with self.db.read() as session:
            row = session.get(self.model, row_id)
            if row is None:
                return None
            session.expunge(row)
            return row, self.people(session, row_id)

    def _shown(self, row_id: int, version: int, channel: str | None, ts: str | None) -> None:
        """What Slack shows now: the last version written (not the highest), so a stale
        update that landed after a newer one is noticed and written over."""
        with self.db.write() as session:
            row = session.get(self.model, row_id, with_for_update=True)
            if row is not None:
                row.shown_version = version
                row.channel, row.ts = channel or row.channel, ts or row.ts

    def _render(self, row: Versioned, people: list[str]) -> tuple[str, list[dict[str, Any]]]:
        ref = self.settings.escalation.mention
        mention = mention_ref(ref) if ref and row.status == "open" else None
        return self.message(row, people, mention)

    async def post(self, job: Job) -> Outcome:
        channel = self.settings.slack.security_channel
        if self.slack is None or not channel:
            return GiveUp(f"no Slack security channel to show {self.unlisted}")
        row_id = int(job.payload[self.id_key])
        async with self._locks.setdefault(row_id, asyncio.Lock()):
            loaded = await asyncio.to_thread(self._load, row_id)
            if loaded is None:
                return GiveUp(f"{self.what} {row_id} is gone")
            row, people = loaded
            try:
                if row.ts is None:
                    text, blocks = self._render(row, people)
                    name, kind = self.post_key
                    key = {name: row_id, "kind": kind}
                    posted = await deliver_once(self.db, self.slack, job, channel, text,
                                                blocks, key)  # fmt: skip
                    # A message an earlier run posted shows what the row held then (it died
                    # before recording it): no known version, so _converge repaints it.
                    shown = UNKNOWN_VERSION if posted.earlier else row.version
                    await asyncio.to_thread(self._shown, row_id, shown, channel, posted.ts)
                await self._converge(row_id)
            except SlackRetryLater as exc:
                return retry_later(job, exc)
            except SlackPermanentError as exc:
                return RetryAt(utcnow() + backoff(job.attempts + 1, cap=600), str(exc))
        return Done()

    async def update(self, job: Job) -> Outcome:
        if self.slack is None:
            return GiveUp("Slack is not configured")
        row_id = int(job.payload[self.id_key])
        async with self._locks.setdefault(row_id, asyncio.Lock()):
            try:
                await self._converge(row_id)
            except SlackRetryLater as exc:
                return retry_later(job, exc)
            except SlackPermanentError as exc:
                return GiveUp(str(exc))
        return Done()

    async def _converge(self, row_id: int) -> None:
        """Update the message until it shows the row's newest version. Before the first post
        there is nothing to update: the post job shows whatever is newest when it runs."""
        assert self.slack is not None
        for _ in range(_CONVERGE_ROUNDS):
            loaded = await asyncio.to_thread(self._load, row_id)
            if loaded is None:
                return
            row, people = loaded
            if row.ts is None or row.channel is None or row.shown_version >= row.version:
                return
            text, blocks = self._render(row, people)
            await self.slack.update(row.channel, row.ts, text, blocks)
            await asyncio.to_thread(self._shown, row_id, row.version, None, None)
