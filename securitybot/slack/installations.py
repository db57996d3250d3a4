"""Several workspaces without Enterprise Grid: the bot token of each workspace installed
through Slack's OAuth flow, one client per installation, refreshed before it expires.

slack_sdk's SQLAlchemy installation store keeps the installations on our database
(store/slack_installations.py). It is synchronous; ``AsyncStore`` gives it the asynchronous
face Bolt's conventions expect (``AsyncInstallationStore``: Bolt's token revocation listeners
delete through it on ``app_uninstalled`` and ``tokens_revoked``), each call in a thread.

``Installations`` is what the gateway and Bolt's ``authorize`` ask: "the client for team T",
None when T is not installed (the single ``slack.bot_token`` serves it, as before). With token
rotation on, a bot token lasts 12 hours and comes with a refresh token
(docs.slack.dev/authentication/using-token-rotation); slack_sdk's ``AsyncTokenRotator``
exchanges it (``oauth.v2.access``, ``grant_type=refresh_token``) ``refresh_before`` ahead, and
the new pair is saved. A refresh token is single use: when another replica spent it first
(``invalid_refresh_token``), the store has the new pair, which is read again. Slack spends the
old one before the new pair is saved, so a pair the database failed to save is kept in memory
(and served) and its save tried again at each use until it lands. A refresh Slack refused for
now (429, a server error) spent nothing: the current token serves while it is valid, and a 429
holds further refreshes of that workspace for Retry-After.
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
from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.exc import SQLAlchemyError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from securitybot.masking import known_secrets
from securitybot.slack.api_types import SlackPermanentError, SlackRetryLater, retry_handlers
from securitybot.slack.tokens import ADMIN_SCOPES
from securitybot.store import slack_installations

logger = logging.getLogger(__name__)

# slack_sdk logs whole answers at DEBUG; oauth.v2.access answers with tokens not yet known to
# the log scrubber. The client that exchanges codes and refresh tokens logs through this one.
TOKEN_EXCHANGE_LOG = logging.getLogger("securitybot.slack.token_exchange")
TOKEN_EXCHANGE_LOG.setLevel(logging.WARNING)

# How long a client (or "not installed") is trusted before the store is read again: another
# replica may have installed, uninstalled or rotated meanwhile.
CACHE_TTL = 60.0
# A refresh token another replica just spent: its new pair is read this often, this far apart.
RACE_READS, RACE_PAUSE = 10, 0.2
# Writes of a refreshed pair, at once (a brief database hiccup); then at each later use.
SAVE_ATTEMPTS = 3
# A refresh token spent by another replica (docs.slack.dev/reference/methods/oauth.v2.access).
SPENT = "invalid_refresh_token"
# Slack did nothing and may do it later (the gateway's own list: slack/gateway.py, _call).
TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                       "request_timeout"})  # fmt: skip


class AsyncStore(AsyncInstallationStore):
    """slack_sdk's synchronous SQLAlchemy store, asynchronously (a thread per call).
    ``changed(team_id)`` is told of every save and delete, so cached clients follow."""

    def __init__(self, store: SQLAlchemyInstallationStore) -> None:
        self.store = store
        self.changed: list[Callable[[str | None], None]] = []

    def _tell(self, team_id: str | None) -> None:
        for listener in self.changed:
            listener(team_id)

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self.store.save, installation)
        self._tell(installation.team_id)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self.store.save_bot, bot)
        self._tell(bot.team_id)

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:  # fmt: skip
        return await asyncio.to_thread(
            self.store.find_bot, enterprise_id=enterprise_id, team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )  # fmt: skip

    async def async_find_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:  # fmt: skip
        return await asyncio.to_thread(
            self.store.find_installation, enterprise_id=enterprise_id, team_id=team_id,
            user_id=user_id, is_enterprise_install=is_enterprise_install,
        )  # fmt: skip

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await asyncio.to_thread(self.store.delete_bot, enterprise_id=enterprise_id,
                                team_id=team_id)  # fmt: skip
        self._tell(team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await asyncio.to_thread(self.store.delete_installation, enterprise_id=enterprise_id,
                                team_id=team_id, user_id=user_id)  # fmt: skip
        self._tell(team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)

    def teams(self) -> list[tuple[str | None, str]]:
        return slack_installations.installed_teams(self.store)


class AsyncStateStore(AsyncOAuthStateStore):
    """slack_sdk's synchronous SQLAlchemy OAuth state store, a thread per call."""

    def __init__(self, store: SQLAlchemyOAuthStateStore) -> None:
        self.store = store

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(self.store.issue)

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.store.consume, state)


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
        self._refresh_minutes = max(1, int(refresh_before // 60))
        self._rotator = AsyncTokenRotator(
            client_id=client_id, client_secret=client_secret,
            client=AsyncWebClient(base_url=api_url, logger=TOKEN_EXCHANGE_LOG),
        )  # fmt: skip
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        # The installed workspaces (team id -> its enterprise id, when it is in one).
        self._teams: tuple[float, dict[str, str | None]] | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        # Refreshed pairs not saved yet (the database failed): served and saved at next use.
        self._unsaved: dict[str, Bot] = {}
        # The same for installers' user tokens (session resets), refreshed one at a time.
        self._unsaved_users: dict[str, Installation] = {}
        self._user_locks: dict[str, asyncio.Lock] = {}
        # A refresh answered 429: no other refresh of that workspace before this (clock).
        self._hold: dict[str, float] = {}
        # The process's shared aiohttp session (wiring sets it at start), for every client.
        self.session: aiohttp.ClientSession | None = None
        store.changed.append(self.forget)

    def forget(self, team_id: str | None) -> None:
        """Drop what is cached about ``team_id`` (installed, reinstalled, uninstalled): a
        refreshed pair kept unsaved is older than a reinstall's and must not be saved over it."""
        if team_id is not None:
            self._entries.pop(team_id, None)
            self._unsaved.pop(team_id, None)
            self._unsaved_users.pop(team_id, None)
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
        found = await self._user_rotated(found)
        if found.user_token is None:
            return AdminUser(team_id, name, found.enterprise_id, None)
        known_secrets.add(t for t in (found.user_token, found.user_refresh_token) if t)
        client = AsyncWebClient(
            token=found.user_token, base_url=self.api_url, retry_handlers=retry_handlers(),
            session=self.session,
        )  # fmt: skip
        return AdminUser(team_id, name, found.enterprise_id, client)

    async def _user_rotated(self, found: Installation) -> Installation:
        """``found`` with a fresh user token when it expires soon (token rotation on).

        One refresh per workspace at a time: a refresh token works once, so two resets at
        once (an AER burst) must not both spend it. A refreshed installation is kept here
        until it is saved (a failed save must not lose the only valid refresh token), and
        served in place of the store's. The saved installation carries the workspace's
        current bot: saving one also saves its bot (slack_sdk's store), and the one read may
        hold a bot token since rotated."""
        team = str(found.team_id)
        async with self._user_locks.setdefault(team, asyncio.Lock()):
            kept = self._unsaved_users.get(team)
            if kept is not None:
                found = kept
            try:
                fresh = await self._rotator.perform_user_token_rotation(
                    installation=found, minutes_before_expiration=self._refresh_minutes
                )
            except SlackTokenRotationError as exc:
                error, retry = _refused(exc)
                if error == SPENT:  # another replica refreshed first: read what it saved
                    again = await self.store.async_find_installation(
                        enterprise_id=found.enterprise_id, team_id=found.team_id
                    )
                    if again is not None and again.user_refresh_token != found.user_refresh_token:
                        return again
                logger.warning("Slack: cannot refresh the user token of %s now: %s", team, error)
                _usable_until(found.user_token_expires_at, error, retry)
                return found
            if fresh is None:
                if kept is not None:
                    await self._save_kept(team, kept, self._unsaved_users)  # tried again
                return found
            known_secrets.add(t for t in (fresh.user_token, fresh.user_refresh_token) if t)
            bot = await self.bot(team)
            if bot is not None:
                fresh.bot_id, fresh.bot_user_id = bot.bot_id, bot.bot_user_id
                fresh.bot_token, fresh.bot_scopes = bot.bot_token, bot.bot_scopes
                fresh.bot_refresh_token = bot.bot_refresh_token
                fresh.bot_token_expires_at = bot.bot_token_expires_at
            self._unsaved_users[team] = fresh
            await self._save_kept(team, fresh, self._unsaved_users)
            logger.info("Slack: refreshed the user token of workspace %s", team)
            return fresh

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
            if team_id not in installed:
                self._unsaved.pop(team_id, None)  # uninstalled: never saved back
            elif team_id in self._unsaved:  # newer than the store's, whose refresh is spent
                bot = self._unsaved[team_id]
                await self._save_kept(team_id, bot, self._unsaved)
            else:  # the store finds a bot by its enterprise and team
                bot = await self.store.async_find_bot(
                    enterprise_id=installed[team_id], team_id=team_id
                )
            if bot is not None:
                bot = await self._rotated(team_id, bot)
            entry = _Entry(self._clock(), bot, self._client_for(bot) if bot else None)
            self._entries[team_id] = entry
            return entry

    def _current(self, entry: _Entry) -> bool:
        if self._clock() - entry.at > CACHE_TTL:
            return False
        if entry.bot is not None and entry.bot.team_id in self._unsaved:
            return False  # its save is tried again
        expires = entry.bot.bot_token_expires_at if entry.bot is not None else None
        return expires is None or expires > time.time() + self._refresh_minutes * 60

    async def _rotated(self, team_id: str, bot: Bot) -> Bot:
        """``bot`` with a fresh token when its token expires soon (token rotation on)."""
        if self._clock() < self._hold.get(team_id, 0.0):
            _usable_until(bot.bot_token_expires_at, "ratelimited",
                          self._hold[team_id] - self._clock())  # fmt: skip
            return bot
        try:
            fresh = await self._rotator.perform_bot_token_rotation(
                bot=bot, minutes_before_expiration=self._refresh_minutes
            )
        except SlackTokenRotationError as exc:
            error, retry = _refused(exc)
            if error == SPENT:  # another replica rotated first and saved the new pair
                logger.warning("Slack: the refresh token of %s was spent; reading the new "
                               "pair", team_id)  # fmt: skip
                return await self._saved_by_another(bot)
            if retry is not None:
                self._hold[team_id] = self._clock() + retry
            logger.warning("Slack: cannot refresh the bot token of %s now: %s", team_id, error)
            _usable_until(bot.bot_token_expires_at, error, retry)
            return bot
        if fresh is None:
            return bot
        known_secrets.add(t for t in (fresh.bot_token, fresh.bot_refresh_token) if t)
        self._unsaved[team_id] = fresh
        await self._save_kept(team_id, fresh, self._unsaved)
        logger.info("Slack: refreshed the bot token of workspace %s", team_id)
        return fresh

    async def _save_kept(self, team_id: str, fresh: Bot | Installation,
                         kept: dict[str, Any]) -> None:  # fmt: skip
        """Save a refreshed bot (``save_bot``) or installation (``save``, its installer's user
        token) in a few tries; it stays in ``kept``, served and saved at its next use, until
        one succeeds: Slack spent the old refresh token, so this is the only valid one."""
        save = self.store.store.save_bot if isinstance(fresh, Bot) else self.store.store.save
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(SAVE_ATTEMPTS), wait=wait_exponential(0.1, max=1.0),
                retry=retry_if_exception_type(SQLAlchemyError), reraise=True,
            ):  # fmt: skip
                with attempt:
                    await asyncio.to_thread(save, fresh)  # type: ignore[arg-type]
        except Exception as exc:  # kept in memory: the next use saves it
            which = "bot" if isinstance(fresh, Bot) else "user"
            logger.warning("Slack: cannot save the refreshed %s token of %s (%s); kept, "
                           "saved at its next use", which, team_id, type(exc).__name__)  # fmt: skip
            return
        kept.pop(team_id, None)

    async def _saved_by_another(self, bot: Bot) -> Bot:
        """The pair another replica is saving after spending ``bot``'s refresh token: read
        until the stored refresh token is another one (a few tries), else ``bot``."""
        for _ in range(RACE_READS):
            again = await self.store.async_find_bot(
                enterprise_id=bot.enterprise_id, team_id=bot.team_id
            )
            if again is None or again.bot_refresh_token != bot.bot_refresh_token:
                return again or bot
            await asyncio.sleep(RACE_PAUSE)
        return bot

    def _client_for(self, bot: Bot) -> AsyncWebClient:
        # Stored tokens are secrets like configured ones: never in a log line.
        known_secrets.add(t for t in (bot.bot_token, bot.bot_refresh_token) if t)
        return AsyncWebClient(
            token=bot.bot_token, base_url=self.api_url, retry_handlers=retry_handlers(),
            session=self.session,
        )  # fmt: skip


def _refused(exc: SlackTokenRotationError) -> tuple[str, float | None]:
    """Why Slack refused a refresh (its error, or ``http_<status>``), and how long a 429 asked
    to wait (None: not a 429)."""
    answer = exc.api_error.response
    error = str(answer.get("error") or f"http_{answer.status_code}")
    if answer.status_code != 429:
        return error, None
    headers = answer.headers or {}
    return error, float(headers.get("Retry-After") or headers.get("retry-after") or 1)


def _usable_until(expires: int | None, error: str, retry: float | None) -> None:
    """A token whose refresh Slack refused (nothing was spent) serves while it is valid; an
    expired one cannot, so the call waits (or fails on a permanent error)."""
    if expires is None or expires > time.time():
        return
    if retry is not None or error in TRANSIENT or error.startswith("http_5"):
        raise SlackRetryLater("oauth.v2.access", error, retry, refused=retry is not None)
    raise SlackPermanentError("oauth.v2.access", error)


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
