"""Refreshing the installed workspaces' tokens (token rotation on), for ``Installations``.

A bot token lasts 12 hours and comes with a refresh token (docs.slack.dev/authentication/
using-token-rotation); slack_sdk's ``AsyncTokenRotator`` exchanges it (``oauth.v2.access``,
``grant_type=refresh_token``) ``refresh_before`` ahead, and the new pair is saved. A refresh
token is single use: when another replica spent it first (``invalid_refresh_token``), the store
has the new pair, which is read again. Slack spends the old one before the new pair is saved, so
a pair the database failed to save is kept in memory (and served) and its save tried again at
each use until it lands.

A refresh Slack refused for now (429, a server error) spent nothing: the current token serves
while it is valid, and a 429 holds further refreshes of that workspace for Retry-After. One
refused for good (any other of oauth.v2.access's documented errors: ``invalid_client_id``,
``bad_client_secret``, ``invalid_grant_type``, ``token_revoked``, ...; docs.slack.dev/reference/
methods/oauth.v2.access, "Errors") is not asked again with the same refresh token, and is logged
once: the current token serves until it expires, then the workspace is unusable
(``WorkspaceUnusable``: lookups across workspaces skip it) until it is reinstalled or another
replica's refreshed pair reaches the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from sqlalchemy.exc import SQLAlchemyError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from securitybot.masking import known_secrets
from securitybot.slack.api_types import SlackRetryLater, WorkspaceUnusable
from securitybot.slack.installation_stores import AsyncStore

logger = logging.getLogger("securitybot.slack.installations")

# A refresh token another replica just spent: its new pair is read this often, this far apart.
RACE_READS, RACE_PAUSE = 10, 0.2
# Writes of a refreshed pair, at once (a brief database hiccup); then at each later use.
SAVE_ATTEMPTS = 3
# A refresh token spent by another replica (docs.slack.dev/reference/methods/oauth.v2.access).
SPENT = "invalid_refresh_token"
# Slack did nothing and may do it later (the gateway's own list: slack/gateway.py, _call).
TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                       "request_timeout"})  # fmt: skip


class TokenRefresh:
    """Bot and installer user tokens refreshed before they expire, pairs kept until saved,
    and what Slack refused, by workspace."""

    def __init__(
        self, store: AsyncStore, rotator: AsyncTokenRotator, *, refresh_minutes: int,
        clock: Callable[[], float],
    ) -> None:  # fmt: skip
        self.store = store
        self.minutes = refresh_minutes
        self._rotator = rotator
        self._clock = clock
        # Refreshed pairs not saved yet (the database failed): served and saved at next use.
        self.unsaved: dict[str, Bot] = {}
        # The same for installers' user tokens (session resets), refreshed one at a time.
        self.unsaved_users: dict[str, Installation] = {}
        self._user_locks: dict[str, asyncio.Lock] = {}
        # A refresh answered 429: no other refresh of that workspace before this (clock).
        self._hold: dict[str, float] = {}
        # A bot refresh refused for good: (the refresh token Slack refused, its error).
        self._refused: dict[str, tuple[str | None, str]] = {}

    def forget(self, team_id: str) -> None:
        """``team_id`` was installed again or uninstalled: what was kept or refused is older."""
        self.unsaved.pop(team_id, None)
        self.unsaved_users.pop(team_id, None)
        self._refused.pop(team_id, None)

    def refused(self, bot: Bot) -> str | None:
        """Slack's error if it refused ``bot``'s refresh token for good, else None."""
        found = self._refused.get(str(bot.team_id))
        return found[1] if found is not None and found[0] == bot.bot_refresh_token else None

    async def bot(self, team_id: str, bot: Bot) -> Bot:
        """``bot`` with a fresh token when its token expires soon (token rotation on)."""
        refused = self.refused(bot)
        if refused is not None:  # asked and refused once: the same token would be again
            _usable_until(team_id, bot.bot_token_expires_at, refused, None)
            return bot
        if self._clock() < self._hold.get(team_id, 0.0):
            _usable_until(team_id, bot.bot_token_expires_at, "ratelimited",
                          self._hold[team_id] - self._clock())  # fmt: skip
            return bot
        try:
            fresh = await self._rotator.perform_bot_token_rotation(
                bot=bot, minutes_before_expiration=self.minutes
            )
        except SlackTokenRotationError as exc:
            error, retry = _refused(exc)
            if error == SPENT:  # another replica rotated first and saved the new pair
                logger.warning("Slack: the refresh token of %s was spent; reading the new "
                               "pair", team_id)  # fmt: skip
                return await self._saved_by_another(bot)
            if retry is not None:
                self._hold[team_id] = self._clock() + retry
            elif _permanent(error):
                self._refused[team_id] = (bot.bot_refresh_token, error)
                logger.warning("Slack: Slack refused to refresh the bot token of %s (%s); its "
                               "current token serves until it expires, then the workspace is "
                               "skipped until it is installed again", team_id, error)  # fmt: skip
                _usable_until(team_id, bot.bot_token_expires_at, error, None)
                return bot
            logger.warning("Slack: cannot refresh the bot token of %s now: %s", team_id, error)
            _usable_until(team_id, bot.bot_token_expires_at, error, retry)
            return bot
        if fresh is None:
            return bot
        known_secrets.add(t for t in (fresh.bot_token, fresh.bot_refresh_token) if t)
        self.unsaved[team_id] = fresh
        await self.save_kept(team_id, fresh, self.unsaved)
        logger.info("Slack: refreshed the bot token of workspace %s", team_id)
        return fresh

    async def user(
        self, found: Installation, current_bot: Callable[[str], Awaitable[Bot | None]]
    ) -> Installation:
        """``found`` with a fresh user token when it expires soon (token rotation on).

        One refresh per workspace at a time: a refresh token works once, so two resets at
        once (an AER burst) must not both spend it. A refreshed installation is kept here
        until it is saved (a failed save must not lose the only valid refresh token), and
        served in place of the store's. The saved installation carries the workspace's
        current bot (``current_bot``): saving one also saves its bot (slack_sdk's store), and
        the one read may hold a bot token since rotated."""
        team = str(found.team_id)
        async with self._user_locks.setdefault(team, asyncio.Lock()):
            kept = self.unsaved_users.get(team)
            if kept is not None:
                found = kept
            try:
                fresh = await self._rotator.perform_user_token_rotation(
                    installation=found, minutes_before_expiration=self.minutes
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
                _usable_until(team, found.user_token_expires_at, error, retry)
                return found
            if fresh is None:
                if kept is not None:
                    await self.save_kept(team, kept, self.unsaved_users)  # tried again
                return found
            known_secrets.add(t for t in (fresh.user_token, fresh.user_refresh_token) if t)
            bot = await current_bot(team)
            if bot is not None:
                fresh.bot_id, fresh.bot_user_id = bot.bot_id, bot.bot_user_id
                fresh.bot_token, fresh.bot_scopes = bot.bot_token, bot.bot_scopes
                fresh.bot_refresh_token = bot.bot_refresh_token
                fresh.bot_token_expires_at = bot.bot_token_expires_at
            self.unsaved_users[team] = fresh
            await self.save_kept(team, fresh, self.unsaved_users)
            logger.info("Slack: refreshed the user token of workspace %s", team)
            return fresh

    async def save_kept(self, team_id: str, fresh: Bot | Installation,
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


def _refused(exc: SlackTokenRotationError) -> tuple[str, float | None]:
    """Why Slack refused a refresh (its error, or ``http_<status>``), and how long a 429 asked
    to wait (None: not a 429)."""
    answer = exc.api_error.response
    error = str(answer.get("error") or f"http_{answer.status_code}")
    if answer.status_code != 429:
        return error, None
    headers = answer.headers or {}
    return error, float(headers.get("Retry-After") or headers.get("retry-after") or 1)


def _permanent(error: str) -> bool:
    """Slack refused the refresh and will refuse that refresh token again: every documented
    error of oauth.v2.access but a spent token (handled apart) and "not now" ones."""
    return error not in TRANSIENT and error != SPENT and not error.startswith("http_5")


def _usable_until(team_id: str, expires: int | None, error: str, retry: float | None) -> None:
    """A token whose refresh Slack refused (nothing was spent) serves while it is valid; an
    expired one cannot, so the call waits (or, on a permanent error, the workspace is
    unusable: ``WorkspaceUnusable``)."""
    if expires is None or expires > time.time():
        return
    if retry is not None or error in TRANSIENT or error.startswith("http_5"):
        raise SlackRetryLater("oauth.v2.access", error, retry, refused=retry is not None)
    raise WorkspaceUnusable("oauth.v2.access", error, team_id)
