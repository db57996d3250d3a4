"""Several workspaces without Enterprise Grid: the bot token of each workspace installed
through Slack's OAuth flow, one client per installation, refreshed before it expires.

slack_sdk's SQLAlchemy installation store keeps the installations on our database
(store/slack_installations.py), through ``installation_stores.AsyncStore``.

``Installations`` is what the gateway and Bolt's ``authorize`` ask: "the client for team T",
None when T is not installed (the single ``slack.bot_token`` serves it, as before). With token
rotation on, tokens are refreshed before they expire (``token_refresh.TokenRefresh``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.oauth.installation_store import Bot
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient

from securitybot.masking import known_secrets
from securitybot.slack.api_types import retry_handlers
from securitybot.slack.installation_stores import AsyncStore
from securitybot.slack.token_refresh import TokenRefresh
from securitybot.slack.tokens import ADMIN_SCOPES

logger = logging.getLogger(__name__)

# slack_sdk logs whole answers at DEBUG; oauth.v2.access answers with tokens not yet known to
# the log scrubber. The client that exchanges codes and refresh tokens logs through this one.
TOKEN_EXCHANGE_LOG = logging.getLogger("securitybot.slack.token_exchange")
TOKEN_EXCHANGE_LOG.setLevel(logging.WARNING)

# How long a client (or "not installed") is trusted before the store is read again: another
# replica may have installed, uninstalled or rotated meanwhile.
CACHE_TTL = 60.0


# The user scope admin.users.session.reset needs.
[ADMIN_SCOPE] = ADMIN_SCOPES


@dataclass(frozen=True)
class AdminUser:
    """An installed workspace, as far as resetting its people's sessions goes."""

    team_id: str
    name: str
    enterprise_id: str | None
    client: AsyncWebClient | None  # the installer's user token with ADMIN_SCOPE, if granted


@dataclass
class _Entry:
    at: float
    bot: Bot | None
    client: AsyncWebClient | None


class Installations:
    """The installed workspaces' clients, by team id."""

    def __init__(
        self, store: AsyncStore, *, api_url: str, client_id: str, client_secret: str,
        refresh_before: float = 7200.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.store = store
        self.api_url = api_url
        rotator = AsyncTokenRotator(
            client_id=client_id, client_secret=client_secret,
            client=AsyncWebClient(base_url=api_url, logger=TOKEN_EXCHANGE_LOG),
        )  # fmt: skip
        self._refresh = TokenRefresh(store, rotator, clock=clock,
                                     refresh_minutes=max(1, int(refresh_before // 60)))  # fmt: skip
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        # The installed workspaces (team id -> its enterprise id, when it is in one).
        self._teams: tuple[float, dict[str, str | None]] | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        # The process's shared aiohttp session (wiring sets it at start), for every client.
        self.session: aiohttp.ClientSession | None = None
        store.changed.append(self.forget)

    def forget(self, team_id: str | None) -> None:
        """Drop what is cached about ``team_id`` (installed, reinstalled, uninstalled): a
        refreshed pair kept unsaved is older than a reinstall's and must not be saved over it."""
        if team_id is not None:
            self._entries.pop(team_id, None)
            self._refresh.forget(team_id)
        self._teams = None

    async def _installed(self) -> dict[str, str | None]:
        now = self._clock()
        if self._teams is None or now - self._teams[0] > CACHE_TTL:
            found = await asyncio.to_thread(self.store.teams)
            self._teams = (now, {team: org for org, team in found})
        return self._teams[1]

    def cached_teams(self) -> frozenset[str] | None:
        """The installed workspaces as last read, or None when they must be read again."""
        if self._teams is None or self._clock() - self._teams[0] > CACHE_TTL:
            return None
        return frozenset(self._teams[1])

    async def teams(self) -> list[str]:
        """The installed workspaces' team ids, oldest install first."""
        return list(await self._installed())

    async def bot(self, team_id: str) -> Bot | None:
        """The workspace's bot (token current), or None when it is not installed."""
        entry = await self._entry(team_id)
        return entry.bot

    async def client(self, team_id: str) -> AsyncWebClient | None:
        """The client with ``team_id``'s bot token, or None when it is not installed."""
        entry = await self._entry(team_id)
        return entry.client

    async def admin_user(self, team_id: str) -> AdminUser | None:
        """What resets sessions in ``team_id``: the workspace's name and the client with the
        user token its installer granted, when that token has ``admin.users:write`` (else
        ``client`` is None); None when ``team_id`` is not installed. Read afresh each time:
        resets are rare, and an admin may have reinstalled with the scope since."""
        installed = await self._installed()
        if team_id not in installed:
            return None
        found = await self.store.async_find_installation(
            enterprise_id=installed[team_id], team_id=team_id
        )
        if found is None:
            return None
        name = found.team_name or team_id
        if not found.user_token or ADMIN_SCOPE not in (found.user_scopes or []):
            return AdminUser(team_id, name, found.enterprise_id, None)
        found = await self._refresh.user(found, self.bot)
        if found.user_token is None:
            return AdminUser(team_id, name, found.enterprise_id, None)
        known_secrets.add(t for t in (found.user_token, found.user_refresh_token) if t)
        client = AsyncWebClient(
            token=found.user_token, base_url=self.api_url, retry_handlers=retry_handlers(),
            session=self.session,
        )  # fmt: skip
        return AdminUser(team_id, name, found.enterprise_id, client)

    async def _entry(self, team_id: str) -> _Entry:
        entry = self._entries.get(team_id)
        if entry is not None and self._current(entry):
            return entry
        lock = self._locks.setdefault(team_id, asyncio.Lock())
        async with lock:  # one read (and one refresh) per workspace at a time
            entry = self._entries.get(team_id)
            if entry is not None and self._current(entry):
                return entry
            installed = await self._installed()
            bot = None
            unsaved = self._refresh.unsaved
            if team_id not in installed:
                unsaved.pop(team_id, None)  # uninstalled: never saved back
            elif team_id in unsaved:  # newer than the store's, whose refresh is spent
                bot = unsaved[team_id]
                await self._refresh.save_kept(team_id, bot, unsaved)
            else:  # the store finds a bot by its enterprise and team
                bot = await self.store.async_find_bot(
                    enterprise_id=installed[team_id], team_id=team_id
                )
            if bot is not None:
                bot = await self._refresh.bot(team_id, bot)
            entry = _Entry(self._clock(), bot, self._client_for(bot) if bot else None)
            self._entries[team_id] = entry
            return entry

    def _current(self, entry: _Entry) -> bool:
        if self._clock() - entry.at > CACHE_TTL:
            return False
        if entry.bot is None:
            return True
        if entry.bot.team_id in self._refresh.unsaved:
            return False  # its save is tried again
        expires = entry.bot.bot_token_expires_at
        if expires is not None and self._refresh.refused(entry.bot) is not None:
            return expires > time.time()  # not refreshed: served as it is while it lasts
        return expires is None or expires > time.time() + self._refresh.minutes * 60

    def _client_for(self, bot: Bot) -> AsyncWebClient:
        # Stored tokens are secrets like configured ones: never in a log line.
        known_secrets.add(t for t in (bot.bot_token, bot.bot_refresh_token) if t)
        return AsyncWebClient(
            token=bot.bot_token, base_url=self.api_url, retry_handlers=retry_handlers(),
            session=self.session,
        )  # fmt: skip


class InstalledAuthorize(AsyncAuthorize):
    """Bolt's ``authorize``: a request from an installed workspace runs with that workspace's
    bot token (its listeners' ``client``); any other with ``slack.bot_token``, as before, so
    the team guard (slack/teams.py) answers a workspace that is not served with its 403."""

    def __init__(
        self, installations: Installations, home: AsyncWebClient,
        home_auth: Callable[[], Awaitable[dict[str, Any]]],
    ) -> None:  # fmt: skip
        self.installations = installations
        self.home = home
        self.home_auth = home_auth

    async def __call__(
        self, *, context: AsyncBoltContext, enterprise_id: str | None, team_id: str | None,
        user_id: str | None, **_: Any,
    ) -> AuthorizeResult | None:  # fmt: skip
        bot = await self.installations.bot(team_id) if team_id else None
        if bot is not None:
            return AuthorizeResult(
                enterprise_id=bot.enterprise_id, team_id=bot.team_id, bot_user_id=bot.bot_user_id,
                bot_id=bot.bot_id, bot_token=bot.bot_token, bot_scopes=bot.bot_scopes,
                user_id=user_id,
            )  # fmt: skip
        auth = await self.home_auth()
        return AuthorizeResult(
            enterprise_id=auth.get("enterprise_id"), team_id=auth.get("team_id"),
            bot_user_id=auth.get("user_id"), bot_id=auth.get("bot_id"),
            bot_token=self.home.token, user_id=user_id,
        )  # fmt: skip
