"""Where the Slack gateway keeps what it learnt about people: the durable cache.

Reads are served from memory: the gateway loads the cache once at start-up, so a DM costs no
database read to find its user and channel. What the gateway learns later is written behind,
many entries per transaction, off the event loop; an entry Slack contradicts
(``user_not_found``, ``channel_not_found``) is deleted at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any, Protocol

from securitybot.store import slack_people
from securitybot.store.db import Database

logger = logging.getLogger(__name__)

Users = dict[str, tuple[dict[str, Any], datetime]]


class Directory(Protocol):
    async def load(self) -> tuple[Users, dict[str, str]]: ...
    def note_user(self, keys: list[str], data: dict[str, Any], at: datetime) -> None: ...
    def note_dm_channel(self, user_id: str, channel: str) -> None: ...
    async def forget_user(self, keys: list[str]) -> None: ...
    async def forget_dm_channel(self, user_id: str) -> None: ...


class DbDirectory:
    def __init__(self, db: Database, *, flush_every: float = 0.2) -> None:
        self.db = db
        self.flush_every = flush_every
        self._users: list[tuple[list[str], dict[str, Any], datetime]] = []
        self._dms: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    async def load(self) -> tuple[Users, dict[str, str]]:
        def read() -> tuple[Users, dict[str, str]]:
            with self.db.read() as session:
                return slack_people.load_all(session)

        return await asyncio.to_thread(read)

    def note_user(self, keys: list[str], data: dict[str, Any], at: datetime) -> None:
        self._users.append((keys, data, at))
        self._kick()

    def note_dm_channel(self, user_id: str, channel: str) -> None:
        self._dms[user_id] = channel
        self._kick()

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: flushed by flush()
                self._task = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        # Until nothing is left: what is noted while a write is in flight finds this task
        # still running (``_kick`` starts none), so it is this task's to write; it was left
        # unwritten until the next note, which might never come (a user_change event lost).
        while True:
            await asyncio.sleep(self.flush_every)  # gather what a burst learns into one commit
            try:
                await self.flush()
            except Exception:  # a cache: losing a write costs a Slack call later, nothing more
                logger.warning("could not store the Slack people cache", exc_info=True)
                return
            if not self._users and not self._dms:
                return

    async def flush(self) -> None:
        users, self._users = self._users, []
        dms, self._dms = self._dms, {}
        if not users and not dms:
            return

        def write() -> None:
            with self.db.write() as session:
                slack_people.put_users(session, users)
                slack_people.put_dm_channels(session, dms)

        await asyncio.to_thread(write)

    async def forget_user(self, keys: list[str]) -> None:
        self._users = [u for u in self._users if not set(u[0]) & set(keys)]

        def write() -> None:
            with self.db.write() as session:
                slack_people.forget_user(session, keys)

        await asyncio.to_thread(write)

    async def forget_dm_channel(self, user_id: str) -> None:
        self._dms.pop(user_id, None)

        def write() -> None:
            with self.db.write() as session:
                slack_people.forget_dm_channel(session, user_id)

        await asyncio.to_thread(write)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            await self.flush()
