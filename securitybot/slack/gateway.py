"""A thin adapter over slack_sdk's AsyncWebClient that speaks in delivery terms.

Slack's errors are sorted into "retry later" (rate limits, 5xx, network) and "permanent"
(everything a retry cannot fix), so the outbox knows whether to back off or give up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from securitybot import metrics
from securitybot.slack.channels import ChannelHealth
from securitybot.slack.directory import Directory
from securitybot.slack.tiers import POST, Limits
from securitybot.store.models import utcnow
from securitybot.token_bucket import Bucket

logger = logging.getLogger(__name__)


class SlackRetryLater(Exception):
    """Try again later. ``refused``: Slack answered that it did nothing (rate limited), as
    opposed to a dropped connection or a server error, after which a post may have landed."""

    def __init__(
        self, method: str, reason: str, retry_after: float | None = None, *, refused: bool = False
    ) -> None:
        super().__init__(f"{method}: {reason}")
        self.retry_after = retry_after
        self.refused = refused
        self.spends_attempt = True


class SlackPermanentError(Exception):
    def __init__(self, method: str, error: str) -> None:
        super().__init__(f"{method}: {error}")
        self.error = error


@dataclass(frozen=True)
class SlackUser:
    id: str
    name: str
    real_name: str
    first_name: str
    email: str | None
    tz: str | None
    is_bot: bool
    deleted: bool
    # Enterprise Grid: the workspaces the person belongs to (users.info's enterprise_user.teams),
    # and whether any of them is one the app was added to (False: nobody can DM them).
    teams: tuple[str, ...] = ()
    reachable: bool = True
    enterprise: str | None = None  # enterprise_user.enterprise_id: the person's Grid org
    # Slack's language for them ("de-DE"): users.info answers it with include_locale=true;
    # users.lookupByEmail never does (None: not asked yet).
    locale: str | None = None


_NOT_FOUND = {"users_not_found", "user_not_found"}
# After a 429, calls to that method (or posts to that channel) keep to its tier this long.
PACE_FOR = 60.0
# The message metadata event_type that tags the bot's own deliveries (alert id, kind, job id).
DELIVERY_EVENT = "securitybot_delivery"


class _NoBlindRepost(AsyncConnectionErrorRetryHandler):
    """slack_sdk's one retry after a dropped connection, except for chat.postMessage: the
    dropped post may well have landed. The outbox retries it instead, looking first."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if request.url.split("?", 1)[0].endswith("/chat.postMessage"):
            return False
        return await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


def retry_handlers() -> list[AsyncRetryHandler]:
    """For AsyncWebClient(retry_handlers=...): the defaults, minus blind re-posts."""
    return [_NoBlindRepost()]


def _user_from(data: dict[str, Any]) -> SlackUser:
    profile = data.get("profile") or {}
    real = profile.get("real_name") or data.get("real_name") or data.get("name") or data["id"]
    first = profile.get("first_name") or real.split(" ")[0]
    org = data.get("enterprise_user") or {}
    teams = org.get("teams") or ([data["team_id"]] if data.get("team_id") else [])
    return SlackUser(
        id=data["id"],
        name=data.get("name") or data["id"],
        real_name=real,
        first_name=first,
        email=profile.get("email"),
        tz=data.get("tz"),
        is_bot=bool(data.get("is_bot")),
        deleted=bool(data.get("deleted")),
        teams=tuple(str(t) for t in teams),
        enterprise=org.get("enterprise_id"),
        locale=data.get("locale") or None,
    )


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
        # Slack's rate tiers. A method (or a channel, for posts) is paced to its tier only
        # once Slack has answered 429 for it, for a minute: until then nothing waits, and
        # after it a burst is spread out instead of retried in a storm of 429s.
        self.limits = limits or Limits()
        self._paced_until: dict[str, float] = {}
        self.admin_client = admin_client
        self._ttl = cache_ttl
        self._cache: dict[str, tuple[float, SlackUser | None]] = {}
        # DM channel ids by user id (conversations.open), and whose channel each one is.
        self._dms: dict[str, str] = {}
        self._dm_owner: dict[str, str] = {}
        self.directory: Directory | None = None
        # Channels the bot cannot post to (not invited, gone, archived): /healthz and metrics.
        self.channel_health = ChannelHealth()
        # An org-wide install (Enterprise Grid): the workspaces the app was added to
        # (auth.teams.list, slack/grid.py). None: a workspace token, everyone is reachable.
        self.workspaces: frozenset[str] | None = None

    def _reach(self, user: SlackUser | None) -> SlackUser | None:
        """``user`` with ``reachable`` for the workspaces the app is in now."""
        if user is None or self.workspaces is None or not user.teams:
            return user
        reachable = not self.workspaces.isdisjoint(user.teams)
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

    async def _pace(self, method: str, channel: str | None) -> None:
        now = time.monotonic()
        wait = 0.0
        for key, bucket in self._keyed_buckets(method, channel):
            if self._paced_until.get(key, 0.0) > now:
                wait = max(wait, bucket.reserve(now))
        if wait > 0:
            metrics.SLACK_ERRORS.labels(method, "paced").inc()
            await asyncio.sleep(wait)

    def _keyed_buckets(self, method: str, channel: str | None) -> list[tuple[str, Bucket]]:
        out: list[tuple[str, Bucket]] = []
        bucket = self.limits.method(method)
        if bucket is not None:
            out.append((method, bucket))
        if method == POST and channel:
            out.append((f"channel:{channel}", self.limits.channel(channel)))
        return out

    def _rate_limited(self, method: str, channel: str | None, retry_after: float) -> None:
        now = time.monotonic()
        for key, bucket in self._keyed_buckets(method, channel):
            self._paced_until[key] = now + PACE_FOR
            bucket.pause(now, retry_after)

    async def _call(self, method: str, client: AsyncWebClient | None = None, **kw: Any) -> Any:
        api = client or self.client
        channel = kw.get("channel") if method == POST else None
        await self._pace(method, channel)
        try:
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
                self._rate_limited(method, channel, float(retry or 1))
                raise SlackRetryLater(
                    method, "ratelimited", float(retry or 1), refused=True
                ) from None
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

    async def lookup_user(self, user: str) -> SlackUser | None:
        """A Slack user by email or id; None if Slack does not know them. Cached with a TTL."""
        now = time.monotonic()
        hit = self._cache.get(user)
        if hit and now - hit[0] < self._ttl:
            return self._reach(hit[1])
        try:
            if "@" in user:
                data = await self._call("users.lookupByEmail", email=user)
            else:
                data = await self._call("users.info", user=user, include_locale=True)
            found: SlackUser | None = _user_from(data["user"])
        except SlackPermanentError as exc:
            if exc.error not in _NOT_FOUND:
                raise
            found = None
        self._cache[user] = (now, found)
        if found is not None:
            # Later steps look the same person up by id: one Slack call serves both.
            self._cache[found.id] = (now, found)
            if self.directory is not None:
                keys = [user.lower() if "@" in user else user, found.id]
                self.directory.note_user(keys, dataclasses.asdict(found), utcnow())
        return self._reach(found)

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
        self._dms[user_id], self._dm_owner[channel] = channel, user_id
        if self.directory is not None:
            self.directory.note_dm_channel(user_id, channel)
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
            if exc.error == "channel_not_found" and await self._forget_dm(channel):
                # A cached DM channel that is gone: Slack posted nothing, and the retry opens
                # the conversation afresh, so this costs no attempt.
                retry = SlackRetryLater("chat.postMessage", "channel_not_found (cached DM "
                                        "channel dropped)", refused=True)  # fmt: skip
                retry.spends_attempt = False
                raise retry from None
            raise
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
        if self.admin_client is None:
            raise SlackPermanentError(
                "admin.users.session.reset", "no slack.admin_token configured"
            )
        await self._call("admin.users.session.reset", client=self.admin_client, user_id=user_id)

    async def usergroup_members(self, usergroup: str) -> set[str]:
        if not self.workspaces:
            data = await self._call("usergroups.users.list", usergroup=usergroup)
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
