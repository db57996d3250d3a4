"""A thin adapter over slack_sdk's AsyncWebClient that speaks in delivery terms.

Slack's errors are sorted into "retry later" (rate limits, 5xx, network) and "permanent"
(everything a retry cannot fix), so the outbox knows whether to back off or give up.
"""

from __future__ import annotations

import asyncio
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
    workspace_unusable,
)
from securitybot.slack.channels import ChannelHealth
from securitybot.slack.directory import Directory
from securitybot.slack.installations import Installations
from securitybot.slack.pacing import Pacing
from securitybot.slack.people_cache import _NOT_FOUND, People
from securitybot.slack.tiers import POST, Limits

__all__ = ["SlackGateway", "SlackPermanentError", "SlackRetryLater", "SlackUser",
           "retry_handlers"]  # fmt: skip

logger = logging.getLogger(__name__)
_user_from = user_from  # the name tests and older callers import from here


# The message metadata event_type that tags the bot's own deliveries (alert id, kind, job id).
DELIVERY_EVENT = "securitybot_delivery"


class SlackGateway(People, Pacing):
    """Slack calls in delivery terms; its people cache, workspace choice and pacing are the
    mixins' (slack/people_cache.py, slack/workspace_routing.py, slack/pacing.py)."""

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
        # Lookups across workspaces (_across): a workspace rate limited, until when (monotonic),
        # by method; and the workspaces whose auth error was logged (once each).
        self._held: dict[tuple[str, str | None], float] = {}
        self._unusable: set[str | None] = set()

    async def _across(self, method: str, **kw: Any) -> Any:
        """``method`` in each workspace served until one knows the person (users.info,
        users.lookupByEmail: user ids and emails are per workspace without Grid). A workspace
        answering an auth error is skipped; one rate limited (its bucket held for Retry-After)
        or failing for now is skipped too, and asked again later only if nobody else knows
        the person."""
        later: SlackRetryLater | None = None
        missing: str | None = None
        unusable: SlackPermanentError | None = None
        for team in await self._teams():
            held = self._held.get((method, team), 0.0) - time.monotonic()
            if held > 0:  # no waiting behind it while other workspaces can answer
                later = SlackRetryLater(method, "ratelimited", held, refused=True)
                later.spends_attempt = False
                continue
            try:
                found = await self._call(method, via_team=team or "", **kw)
            except SlackPermanentError as exc:
                if workspace_unusable(exc):  # an auth error, a token Slack will not refresh
                    self._skipped(team, method, exc.error)
                    unusable = exc
                elif exc.error in _NOT_FOUND:
                    missing = exc.error
                else:
                    raise
                continue
            except SlackRetryLater as exc:
                if exc.refused and exc.retry_after:
                    self._held[(method, team)] = time.monotonic() + exc.retry_after
                later = exc
                continue
            self._unusable.discard(team)
            return found
        if later is not None:
            raise later
        if missing is None and unusable is not None:
            raise unusable  # no workspace could answer at all (slack.bot_token's among them)
        raise SlackPermanentError(method, missing or "users_not_found")

    def _skipped(self, team: str | None, method: str, error: str) -> None:
        """A workspace that cannot answer (auth error), logged once (each error is counted
        in securitybot_slack_errors_total by _call)."""
        if team not in self._unusable:
            self._unusable.add(team)
            name = team or self.home_team or "of slack.bot_token"
            logger.warning("Slack: workspace %s answered %s to %s; skipped until it answers",
                           name, error, method)  # fmt: skip

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

    def dm_target(self, user_id: str) -> str:
        """Where a DM to ``user_id`` is posted: their DM channel (D…) when known, else their
        user id, which chat.postMessage accepts as ``channel`` and answers with the DM's id
        (docs.slack.dev/reference/methods/chat.postMessage): one call, no conversations.open."""
        return self._dms.get(user_id, user_id)

    def _remember_dm(self, user_id: str, channel: str) -> None:
        self._dms[user_id], self._dm_owner[channel] = channel, user_id
        if self.directory is not None:
            self.directory.note_dm_channel(user_id, channel)

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
