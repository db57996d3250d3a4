"""The gateway's people cache: Slack users by id and email, from the directory (users.list,
kept current by events), a TTL cache, or one shared users.lookupByEmail/users.info call.

Kept apart from the gateway (slack/gateway.py), which sends the calls: this decides when a
person must be asked for and remembers the answer, here and in the people table.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from securitybot.slack.api_types import (
    SlackPermanentError,
    SlackRetryLater,
    SlackUser,
    user_from,
    workspace_unusable,
)
from securitybot.slack.directory import Directory
from securitybot.slack.workspace_routing import WorkspaceRouting
from securitybot.store.models import utcnow

_NOT_FOUND = {"users_not_found", "user_not_found"}
# users.list pages (Slack: "no more than 1,000", 200 recommended; Tier 2, 20 pages a minute).
PAGE_SIZE = 1000
# A person the directory sync (or a user_change/team_join event since) told us about stays
# current this long after the sync began, whatever user_cache_ttl says: the daily sync may fail
# once before its people fall back to the TTL and users.lookupByEmail.
DIRECTORY_FRESH = 2 * 86400.0
# A 429 on a users.list page: wait Retry-After and ask for the same page again, this often.
PAGE_RETRIES = 5


class People(WorkspaceRouting):
    """Mixed into SlackGateway, whose ``__init__`` sets the state below (and WorkspaceRouting's)
    and which sends the calls (``_call``, ``_across``)."""

    _ttl: float
    _dms: dict[str, str]
    directory: Directory | None
    _directory_since: float | None
    _lookups: dict[str, asyncio.Future[SlackUser | None]]
    recheck_workspaces: Callable[[], Awaitable[None]] | None
    _call: Callable[..., Awaitable[Any]]
    _across: Callable[..., Awaitable[Any]]
    _skipped: Callable[[str | None, str, str], None]
    _unusable: set[str | None]

    async def attach(self, directory: Directory) -> None:
        """Serve people and DM channels from ``directory`` (loaded now) and store new ones."""
        users, dms = await directory.load()
        now_wall, now = utcnow(), time.monotonic()
        for key, (data, at) in users.items():
            age = (now_wall - at).total_seconds()
            if age < self._ttl:
                person = SlackUser(**{**data, "teams": tuple(data.get("teams") or ())})
                self._cache[key] = (now - age, person)
        for user_id, channel in dms.items():
            self._dms[user_id], self._dm_owner[channel] = channel, user_id
        self.directory = directory

    def _fresh(self, hit: tuple[float, SlackUser | None], now: float) -> bool:
        at, found = hit
        if now - at < self._ttl:
            return True
        # Someone the directory sync (or an event since) told us about is as current as the
        # directory: the daily sync and user_change events keep them so.
        since = self._directory_since
        return (found is not None and since is not None and at >= since
                and now - since < DIRECTORY_FRESH)  # fmt: skip

    def cached(self, user: str) -> tuple[bool, SlackUser | None]:
        """(True, the person) when ``lookup_user`` would answer without calling Slack."""
        key = user.lower() if "@" in user else user
        hit = self._cache.get(key)
        if self.installations is not None and self.installations.cached_teams() is None:
            return False, None  # lookup_user reads the installed workspaces first
        if hit and self._fresh(hit, time.monotonic()):
            person = self._reach(hit[1])
            if person is not None and not person.reachable and self.recheck_workspaces:
                return False, None  # lookup_user re-reads the app's workspaces first
            return True, person
        return False, None

    async def lookup_user(self, user: str) -> SlackUser | None:
        """A Slack user by email or id; None if Slack does not know them. Served from the
        directory (users.list, kept current by events) or a cache with a TTL; otherwise one
        users.lookupByEmail (users.info) call, shared by every caller asking meanwhile."""
        found = await self._lookup_user(user)
        if found is not None and not found.reachable and self.recheck_workspaces:
            await self.recheck_workspaces()
            found = self._reach(found)
        return found

    async def _lookup_user(self, user: str) -> SlackUser | None:
        key = user.lower() if "@" in user else user
        if self.installations is not None:
            await self.installations.teams()  # which workspaces are served now (cached)
        hit = self._cache.get(key)
        if hit and self._fresh(hit, time.monotonic()):
            return self._reach(hit[1])
        pending = self._lookups.get(key)
        if pending is None:
            pending = self._lookups[key] = asyncio.ensure_future(self._look_up(key))
            pending.add_done_callback(functools.partial(self._lookup_done, key))
        return self._reach(await asyncio.shield(pending))

    def _lookup_done(self, key: str, done: asyncio.Future[SlackUser | None]) -> None:
        if self._lookups.get(key) is done:
            del self._lookups[key]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter got it already

    async def _look_up(self, key: str) -> SlackUser | None:
        now = time.monotonic()
        try:
            several = self.installations is not None and (
                "@" in key or self._team_of({"user": key}) is None
            )
            call = self._across if several else self._call
            if "@" in key:
                data = await call("users.lookupByEmail", email=key)
            else:
                data = await call("users.info", user=key, include_locale=True)
            found: SlackUser | None = user_from(data["user"])
        except SlackPermanentError as exc:
            if exc.error not in _NOT_FOUND:
                raise
            found = None
        self._cache[key] = (now, found)
        if found is not None:
            # Later steps look the same person up by id: one Slack call serves both.
            self._cache[found.id] = (now, found)
            if self.directory is not None:
                self.directory.note_user([key, found.id], dataclasses.asdict(found), utcnow())
        return found

    def learn_users(
        self, members: list[dict[str, Any]], *, with_locale: bool = False
    ) -> list[SlackUser]:
        """Keep Slack user objects (users.list members, user_change and team_join events),
        deactivated ones included (``deleted``: their alerts escalate as unknown), by id and
        by email, here and in the people table. ``with_locale``: the objects were asked for
        with include_locale, so one without a locale has none ("", not asked again); else a
        locale learnt before is kept."""
        now, wall = time.monotonic(), utcnow()
        learnt: list[SlackUser] = []
        for data in members:
            if not data.get("id"):
                continue
            found = user_from(data)
            keys = [found.id]
            old = self._cache.get(found.id)
            if found.locale is None:
                known = old[1].locale if old and old[1] else None
                found = dataclasses.replace(found, locale="" if with_locale else known)
            old_email = old[1].email.lower() if old and old[1] and old[1].email else None
            email = found.email.lower() if found.email else None
            if old_email and old_email != email:
                self._cache.pop(old_email, None)  # their address changed: it is not theirs
            if email:
                holder = self._cache.get(email)
                other = holder[1] if holder else None
                # A deactivated account never takes an address from an active one.
                if not (found.deleted and other and other.id != found.id and not other.deleted):
                    keys.append(email)
            for k in keys:
                self._cache[k] = (now, found)
            if self.directory is not None:
                self.directory.note_user(keys, dataclasses.asdict(found), wall)
            learnt.append(found)
        return learnt

    async def sync_directory(self, *, page_size: int = PAGE_SIZE) -> int:
        """Read the whole workspace from users.list (cursor pages of ``page_size``) into the
        people table; the people it knew, deactivated ones included."""
        started = time.monotonic()
        count = 0
        # An org-wide install's token lists one workspace at a time: users.list's team_id is
        # "required if org token is used" (docs.slack.dev/reference/methods/users.list).
        # Several workspaces installed through OAuth: each one's people with its own token.
        pages: list[tuple[str | None, str | None]] = (
            [(team, None) for team in sorted(self.workspaces)]
            if self.workspaces
            else [(None, via or "") for via in await self._teams()]
        )
        later: SlackRetryLater | None = None
        for team, via in pages:
            try:
                count += await self._sync_one(team, via, page_size)
            except SlackPermanentError as exc:  # one workspace that cannot answer: the others
                if not workspace_unusable(exc):
                    raise
                self._skipped(team or via or None, "users.list", exc.error)
            except SlackRetryLater as exc:  # still limited after the page retries: next sync
                later = exc
            else:
                self._unusable.discard(team or via or None)
        if later is not None:
            raise later  # the sync is incomplete: reported, and tried again next time
        self._directory_since = started
        return count

    async def _sync_one(self, team: str | None, via: str | None, page_size: int) -> int:
        """Every page of one workspace's users.list (``team``: an org token's workspace;
        ``via``: the workspace whose token to use)."""
        count = 0
        cursor = ""
        while True:
            # include_locale: each person's language comes with them (docs/i18n.md), so a
            # DM never needs a users.info call to find it.
            kw: dict[str, Any] = {"limit": str(page_size), "include_locale": "true"}
            if team is not None:
                kw["team_id"] = team
            if via is not None:
                kw["via_team"] = via
            if cursor:
                kw["cursor"] = cursor
            data = await self._page("users.list", kw)
            members = list(data.get("members") or [])
            count += len(self.learn_users(members, with_locale=True))
            cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                break
        return count

    async def _page(self, method: str, kw: dict[str, Any]) -> Any:
        """One page of a paginated read; a 429 waits Retry-After and asks for it again."""
        for attempt in range(PAGE_RETRIES + 1):
            try:
                return await self._call(method, **kw)
            except SlackRetryLater as exc:
                if not exc.refused or attempt == PAGE_RETRIES:
                    raise
                await asyncio.sleep(exc.retry_after or 1.0)
        raise AssertionError("unreachable")

    async def locale_of(self, user_id: str) -> str | None:
        """Slack's locale for a user id ("ja-JP"), from the cache when it holds one; else one
        users.info call (a person first found by email has none yet). None if unknown."""
        found = await self.lookup_user(user_id)
        if found is None or found.locale is not None:
            return found.locale if found else None
        data = await self._call("users.info", user=user_id, include_locale=True)
        # "" marks "asked, Slack gave none", so the next DM does not ask again.
        found = dataclasses.replace(
            user_from(data["user"]), locale=data["user"].get("locale") or ""
        )
        now = time.monotonic()
        self._cache[user_id] = (now, found)
        if found.email:
            self._cache[found.email.lower()] = (now, found)
        if self.directory is not None:
            keys = [user_id, *([found.email.lower()] if found.email else [])]
            self.directory.note_user(keys, dataclasses.asdict(found), utcnow())
        return found.locale

    async def forget_user(self, user_id: str) -> None:
        """Slack no longer knows this user: drop them (by id and email) and their channel."""
        hit = self._cache.pop(user_id, None)
        keys = [user_id]
        if hit is not None and hit[1] is not None and hit[1].email:
            keys.append(hit[1].email.lower())
            self._cache.pop(hit[1].email.lower(), None)
        channel = self._dms.pop(user_id, None)
        self._dm_owner.pop(channel or "", None)
        if self.directory is not None:
            await self.directory.forget_user(keys)
