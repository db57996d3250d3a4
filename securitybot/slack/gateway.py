"""A thin adapter over slack_sdk's AsyncWebClient that speaks in delivery terms.

Slack's errors are sorted into "retry later" (rate limits, 5xx, network) and "permanent"
(everything a retry cannot fix), so the outbox knows whether to back off or give up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from securitybot import metrics
from securitybot.slack import session_reset
from securitybot.slack.api_types import (
    SlackPermanentError,
    SlackRetryLater,
    SlackUser,
    is_user_id,
    retry_handlers,
    user_from,
)
from securitybot.slack.channels import ChannelHealth
from securitybot.slack.directory import Directory
from securitybot.slack.installations import Installations
from securitybot.slack.tiers import POST, Limits
from securitybot.store.models import utcnow
from securitybot.token_bucket import Bucket

__all__ = ["SlackGateway", "SlackPermanentError", "SlackRetryLater", "SlackUser",
           "retry_handlers"]  # fmt: skip

logger = logging.getLogger(__name__)
_user_from = user_from  # the name tests and older callers import from here


_NOT_FOUND = {"users_not_found", "user_not_found"}
# users.list pages (Slack: "no more than 1,000", 200 recommended; Tier 2, 20 pages a minute).
PAGE_SIZE = 1000
# A person the directory sync (or a user_change/team_join event since) told us about stays
# current this long after the sync began, whatever user_cache_ttl says: the daily sync may fail
# once before its people fall back to the TTL and users.lookupByEmail.
DIRECTORY_FRESH = 2 * 86400.0
# A 429 on a users.list page: wait Retry-After and ask for the same page again, this often.
PAGE_RETRIES = 5
# The message metadata event_type that tags the bot's own deliveries (alert id, kind, job id).
DELIVERY_EVENT = "securitybot_delivery"


class SlackGateway:
    def __init__(
        self,
        client: AsyncWebClient,
        *,
        admin_client: AsyncWebClient | None = None,
        cache_ttl: float = 3600.0,
        limits: Limits | None = None,
    ) -> None:
        self.client = client
        # Slack's rate tiers, kept from the first call: every call takes a token from its
        # method's bucket (chat.postMessage: the workspace's post ceiling) and a post also from
        # its channel's, waiting for it when the bucket is empty. A 429 holds that method's
        # bucket (for a post, that channel's) for Retry-After; other methods never wait on it.
        self.limits = limits or Limits()
        self.admin_client = admin_client
        self._ttl = cache_ttl
        self._cache: dict[str, tuple[float, SlackUser | None]] = {}
        # DM channel ids by user id (conversations.open), and whose channel each one is.
        self._dms: dict[str, str] = {}
        self._dm_owner: dict[str, str] = {}
        self.directory: Directory | None = None
        # When the last complete users.list sync began (monotonic), and lookups in flight.
        self._directory_since: float | None = None
        self._lookups: dict[str, asyncio.Future[SlackUser | None]] = {}
        # Channels the bot cannot post to (not invited, gone, archived): /healthz and metrics.
        self.channel_health = ChannelHealth()
        # An org-wide install (Enterprise Grid): the workspaces the app was added to
        # (auth.teams.list, slack/grid.py). None: a workspace token, everyone is reachable.
        self.workspaces: frozenset[str] | None = None
        # Re-reads that list, unless it is fresh, before anyone is called not reachable: the
        # app may have been added to their workspace since (slack/grid.py, Workspaces).
        self.recheck_workspaces: Callable[[], Awaitable[None]] | None = None
        # Several workspaces installed through OAuth (slack/installations.py): each call goes
        # out with the bot token of the workspace its person or channel is in. None: one token.
        self.installations: Installations | None = None
        # Channels (security channels of escalation.routes) and the workspace each is in; a
        # channel not listed (slack.security_channel) is slack.bot_token's.
        self.channel_teams: dict[str, str] = {}
        # slack.bot_token's workspace (auth.test at start): served beside the installed ones.
        self.home_team: str | None = None

    def _served(self) -> frozenset[str] | None:
        """The workspaces the app can DM people in, when it knows: an org-wide install's, or
        slack.bot_token's and the installed ones (None: everyone is reachable)."""
        if self.workspaces is not None:
            return self.workspaces
        if self.installations is None or self.home_team is None:
            return None
        installed = self.installations.cached_teams()
        return None if installed is None else installed | {self.home_team}

    def _reach(self, user: SlackUser | None) -> SlackUser | None:
        """``user`` with ``reachable`` for the workspaces the app is in now (a person of a
        workspace that uninstalled the app is ``not_reachable``, never asked with another's
        token)."""
        served = self._served()
        if user is None or served is None or not user.teams:
            return user
        reachable = not served.isdisjoint(user.teams)
        return (
            user if reachable == user.reachable else dataclasses.replace(user, reachable=reachable)
        )

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

    async def _pace(self, method: str, channel: str | None, team: str | None) -> None:
        """Wait for this call's turn in every bucket it counts against.

        A call with one bucket reserves its token at once, so concurrent callers are spread
        one token apart (in order) rather than retrying together. A post counts against two
        (the workspace's ceiling and its channel's one a second) and takes both at the
        moment it is sent, as Slack counts them: a token reserved ahead in one bucket while
        the other makes the post wait would be spent early, and the post arrive in a burst.
        """
        started = now = time.monotonic()
        key = self._channel_key(channel) if channel else None
        buckets = self.limits.buckets(method, key, team)
        if len(buckets) == 1:
            wait = buckets[0].reserve(now)
            if wait > 0:
                await asyncio.sleep(wait)
        elif buckets:
            while (wait := self.limits.try_call(method, key, now, team)) > 0:
                await asyncio.sleep(wait)
                now = time.monotonic()
        metrics.SLACK_BUCKET_WAIT.labels(method).observe(time.monotonic() - started)

    def _channel_key(self, channel: str) -> str:
        """A post to a user id lands in their DM: the same channel, the same bucket."""
        return self._dms.get(channel, channel)

    def _rate_limited(
        self, method: str, channel: str | None, team: str | None, retry_after: float
    ) -> None:
        """Slack said 429: hold the bucket it refused, and only that one (a post's channel;
        any other call's method in that workspace), for Retry-After."""
        now = time.monotonic()
        if method == POST and channel:
            held: Bucket | None = self.limits.channel(self._channel_key(channel))
        else:
            held = self.limits.method(method, team)
        if held is not None:
            held.pause(now, retry_after)

    def _workspace_of(self, kw: dict[str, Any], via_team: str | None) -> str | None:
        """The workspace a call goes to: the one it names (``team_id``), or whose token it
        is sent with (``via_team``; "" is slack.bot_token's own), or whose channel or person
        it is about; None for the app's own or unknown."""
        if via_team == "":
            return kw.get("team_id") or None
        return kw.get("team_id") or via_team or self._team_of(kw)

    def _bucket_team(self, team: str | None) -> str | None:
        """Whose allowance a call to ``team`` spends: Slack counts limits per workspace, so
        with several served (Grid, OAuth installs) that one's; None for the app's own (and
        always with one workspace: one allowance, however a call is keyed)."""
        if self.workspaces is None and self.installations is None:
            return None
        return None if not team or team == self.home_team else team

    def _team_of(self, kw: dict[str, Any]) -> str | None:
        """The workspace a call is about: its channel's, or its person's (a DM channel's
        owner, a user id), as the directory knows them; None when unknown."""
        for key in ("channel", "user", "users"):
            value = kw.get(key)
            if not isinstance(value, str) or not value:
                continue
            if key == "channel":
                if value in self.channel_teams:
                    return self.channel_teams[value]
                value = self._dm_owner.get(value, value)
            hit = self._cache.get(value)
            if hit is not None and hit[1] is not None and hit[1].teams:
                return hit[1].teams[0]
        return None

    async def _client_for(self, team: str | None) -> AsyncWebClient:
        """``team``'s installation's client, else slack.bot_token's."""
        if self.installations is None:
            return self.client
        found = await self.installations.client(team) if team else None
        return found or self.client

    async def _teams(self) -> list[str | None]:
        """Every workspace served: slack.bot_token's (None), then the installed ones."""
        installed = await self.installations.teams() if self.installations else []
        return [None, *installed]

    async def _across(self, method: str, **kw: Any) -> Any:
        """``method`` in each workspace served until one knows the person (users.info,
        users.lookupByEmail: user ids and emails are per workspace without Grid)."""
        teams = await self._teams()
        for i, team in enumerate(teams):
            try:
                return await self._call(method, via_team=team or "", **kw)
            except SlackPermanentError as exc:
                if exc.error not in _NOT_FOUND or i == len(teams) - 1:
                    raise
        raise AssertionError("unreachable")

    async def _call(
        self, method: str, client: AsyncWebClient | None = None, *, via_team: str | None = None,
        **kw: Any,
    ) -> Any:  # fmt: skip
        """``via_team``: the workspace whose token to use ("": slack.bot_token's); default:
        the workspace of the call's channel or person."""
        channel = kw.get("channel") if method == POST else None
        workspace = self._workspace_of(kw, via_team)  # worked out once for both below
        team = self._bucket_team(workspace)
        await self._pace(method, channel, team)
        try:
            if client is not None:
                api = client
            elif via_team == "":
                api = self.client
            else:  # may refresh the workspace's token first (oauth.v2.access)
                api = await self._client_for(workspace)
            resp = (
                await api.api_call(method, json=kw)
                if method.startswith("chat.") or method.startswith("views.")
                else await api.api_call(method, params=kw)
            )
        except SlackApiError as exc:
            status = exc.response.status_code
            error = str(exc.response.get("error") or f"http_{status}")
            metrics.SLACK_ERRORS.labels(method, error).inc()
            if channel is not None:
                self.channel_health.failed(channel, error)
            if status == 429:
                retry = exc.response.headers.get("Retry-After") or exc.response.headers.get(
                    "retry-after"
                )
                self._rate_limited(method, channel, team, float(retry or 1))
                limited = SlackRetryLater(method, "ratelimited", float(retry or 1), refused=True)
                limited.spends_attempt = False  # "not yet", never a failed attempt
                raise limited from None
            if status >= 500 or error in {
                "internal_error",
                "fatal_error",
                "service_unavailable",
                "request_timeout",
            }:
                raise SlackRetryLater(method, error) from None
            raise SlackPermanentError(method, error) from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            metrics.SLACK_ERRORS.labels(method, type(exc).__name__).inc()
            raise SlackRetryLater(method, f"{type(exc).__name__}: {exc}") from None
        if channel is not None:
            self.channel_health.ok(channel)
        return resp.data

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
        for team, via in pages:
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
        self._directory_since = started
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

    def dm_target(self, user_id: str) -> str:
        """Where a DM to ``user_id`` is posted: their DM channel (D…) when known, else their
        user id, which chat.postMessage accepts as ``channel`` and answers with the DM's id
        (docs.slack.dev/reference/methods/chat.postMessage): one call, no conversations.open."""
        return self._dms.get(user_id, user_id)

    def _remember_dm(self, user_id: str, channel: str) -> None:
        self._dms[user_id], self._dm_owner[channel] = channel, user_id
        if self.directory is not None:
            self.directory.note_dm_channel(user_id, channel)

    async def locale_of(self, user_id: str) -> str | None:
        """Slack's locale for a user id ("ja-JP"), from the cache when it holds one; else one
        users.info call (a person first found by email has none yet). None if unknown."""
        found = await self.lookup_user(user_id)
        if found is None or found.locale is not None:
            return found.locale if found else None
        data = await self._call("users.info", user=user_id, include_locale=True)
        # "" marks "asked, Slack gave none", so the next DM does not ask again.
        found = dataclasses.replace(
            _user_from(data["user"]), locale=data["user"].get("locale") or ""
        )
        now = time.monotonic()
        self._cache[user_id] = (now, found)
        if found.email:
            self._cache[found.email.lower()] = (now, found)
        if self.directory is not None:
            keys = [user_id, *([found.email.lower()] if found.email else [])]
            self.directory.note_user(keys, dataclasses.asdict(found), utcnow())
        return found.locale

    async def open_dm(self, user_id: str) -> str:
        """The DM channel with a user: conversations.open once, then from the cache."""
        cached = self._dms.get(user_id)
        if cached is not None:
            return cached
        try:
            data = await self._call("conversations.open", users=user_id)
        except SlackPermanentError as exc:
            if exc.error in _NOT_FOUND:
                await self.forget_user(user_id)
            raise
        channel = str(data["channel"]["id"])
        self._remember_dm(user_id, channel)
        return channel

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

    async def _forget_dm(self, channel: str) -> bool:
        """Drop a cached DM channel Slack says is gone; False if it was not one of ours."""
        user_id = self._dm_owner.pop(channel, None)
        if user_id is None:
            return False
        self._dms.pop(user_id, None)
        if self.directory is not None:
            await self.directory.forget_dm_channel(user_id)
        return True

    async def post(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
        *,
        delivery: dict[str, Any] | None = None,
    ) -> str:
        """Post a message; ``delivery`` tags it (message metadata) so a retry can find it."""
        kw: dict[str, Any] = {"channel": channel, "text": text}
        if blocks is not None:
            kw["blocks"] = blocks
        if delivery is not None:
            # https://docs.slack.dev/messaging/message-metadata: event_type + event_payload
            kw["metadata"] = {"event_type": DELIVERY_EVENT, "event_payload": delivery}
        try:
            data = await self._call("chat.postMessage", **kw)
        except SlackPermanentError as exc:
            if is_user_id(channel) and exc.error in _NOT_FOUND | {"channel_not_found"}:
                await self.forget_user(channel)  # nobody by that id any more
                raise
            if exc.error == "channel_not_found" and await self._forget_dm(channel):
                # A cached DM channel that is gone: Slack posted nothing, and the retry opens
                # the conversation afresh, so this costs no attempt.
                retry = SlackRetryLater("chat.postMessage", "channel_not_found (cached DM "
                                        "channel dropped)", refused=True)  # fmt: skip
                retry.spends_attempt = False
                raise retry from None
            raise
        landed = str(data.get("channel") or "")
        if is_user_id(channel) and landed.startswith("D"):
            self._remember_dm(channel, landed)  # updates and deletions need the D… id
        return str(data["ts"])

    async def find_delivery(
        self, channel: str, key: dict[str, Any], *, oldest: float, max_pages: int = 10
    ) -> str | None:
        """The ts of a message posted in ``channel`` since ``oldest`` (Unix seconds) whose
        delivery tag contains ``key``, or None.

        conversations.history (scopes channels:history, groups:history, im:history) is Tier 3,
        about 50 calls a minute, so callers use it only when a retry may repeat a post.
        """
        cursor = ""
        for _ in range(max_pages):
            kw: dict[str, Any] = {"channel": channel, "oldest": f"{oldest:.6f}",
                                  "limit": "999", "include_all_metadata": "true"}  # fmt: skip
            if cursor:
                kw["cursor"] = cursor
            data = await self._call("conversations.history", **kw)
            for message in data.get("messages") or []:
                meta = message.get("metadata") or {}
                payload = meta.get("event_payload") or {}
                if meta.get("event_type") == DELIVERY_EVENT and all(
                    payload.get(k) == v for k, v in key.items()
                ):
                    return str(message["ts"])
            cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
            if not data.get("has_more") or not cursor:
                return None
        logger.warning("delivery %s not found in the %s newest pages of %s", key, max_pages,
                       channel)  # fmt: skip
        return None

    async def update(
        self, channel: str, ts: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        kw: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        kw["blocks"] = blocks if blocks is not None else []
        await self._call("chat.update", **kw)

    async def ephemeral(self, channel: str, user: str, text: str) -> None:
        await self._call("chat.postEphemeral", channel=channel, user=user, text=text)

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        await self._call("views.open", trigger_id=trigger_id, view=view)

    async def reset_sessions(self, user_id: str) -> None:
        """Sign ``user_id`` out everywhere, with the admin token of their workspace's org
        (slack/session_reset.py); SessionResetUnavailable when there is none."""
        if self.installations is not None:
            person = await self.lookup_user(user_id)
            installed = await self.installations.teams()
            team = session_reset.installed_team(
                person.teams if person else (), installed, self.home_team
            )
            if team is not None:
                client = await session_reset.reset_client(self.installations, team)
                await self._call("admin.users.session.reset", client=client, via_team=team,
                                 user_id=user_id)  # fmt: skip
                return
        if self.admin_client is None:
            raise SlackPermanentError(session_reset.METHOD, "no slack.admin_token configured")
        await self._call("admin.users.session.reset", client=self.admin_client, user_id=user_id)

    async def usergroup_members(self, usergroup: str, team: str | None = None) -> set[str]:
        """``team``: the group is that workspace's (an escalation route's), read with its
        token when it was installed through OAuth; default: slack.bot_token's."""
        if not self.workspaces:
            via = team if team and self.installations and team != self.home_team else ""
            data = await self._call("usergroups.users.list", via_team=via, usergroup=usergroup)
            return set(data.get("users") or [])
        # An org-level token must name the workspace (team_id, "required if org token is
        # used": docs.slack.dev/reference/methods/usergroups.users.list); the group lives in
        # one of the app's workspaces, or is org-wide and answers in any.
        for team in sorted(self.workspaces):
            try:
                data = await self._call("usergroups.users.list", usergroup=usergroup, team_id=team)
            except SlackPermanentError as exc:
                if exc.error == "no_such_subteam":
                    continue
                raise
            return set(data.get("users") or [])
        raise SlackPermanentError("usergroups.users.list", "no_such_subteam")
