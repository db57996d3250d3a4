"""A local fake of the Slack Web API and Audit Logs API, served over a real socket.

The product talks to it through the unmodified slack_sdk clients, so request encoding
(form vs JSON bodies, GET query strings, bearer tokens) is exercised exactly as in production.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from securitybot.demo._serving import FakeServer, ServedFake
from securitybot.demo.fake_slack_audit import SlackAuditLogs
from securitybot.demo.fake_slack_faults import SlackFaults, _Failure
from securitybot.demo.fake_slack_http import AUDIT_LOGS, RESPONSE_URL, read_request, send_reply
from securitybot.demo.fake_slack_installs import SlackInstalls
from securitybot.demo.fake_slack_methods import SlackMethods
from securitybot.demo.fake_slack_people import SlackPeople
from securitybot.demo.fake_slack_users import user_object
from securitybot.demo.slack_examples import TOKEN_LIFETIME
from securitybot.slack.tiers import Limits

log = logging.getLogger(__name__)

Json = dict[str, Any]


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float
    status: int = 200
    response: Json = field(default_factory=dict)


class FakeSlack(ServedFake, SlackMethods, SlackPeople, SlackInstalls, SlackFaults, SlackAuditLogs):
    """Slack Web API fake. Start it, point WebClient(base_url=fs.base_url) at it."""

    def __init__(
        self,
        team_id: str = "T1",
        bot_user_id: str = "UBOT",
        *,
        enterprise_id: str | None = None,
        org_install: bool = False,
        workspaces: list[str] | None = None,
    ) -> None:
        self.team_id = team_id
        # Enterprise Grid: the org (users get an enterprise_user block), whether the bot token
        # is an org-wide install, and the workspaces that install was added to.
        self.enterprise_id = enterprise_id
        self.org_install = org_install
        self.workspaces: list[str] = list(workspaces or [team_id])
        self.bot_user_id = bot_user_id
        self.bot_id = "BBOT"
        # When set, admin.* and Audit Logs calls must present exactly this user token.
        self.admin_token: str | None = None
        # Scopes per token (the x-oauth-scopes header), when a test takes one away.
        self.token_scopes: dict[str, list[str]] = {}
        self.users: dict[str, Json] = {}
        self.locales: dict[str, str] = {}  # user id -> Slack locale (users.info include_locale)
        self.usergroups: dict[str, list[str]] = {}
        self.usergroup_teams: dict[str, str] = {}
        # Messages per conversation (channels and DMs), and who is in each channel (C…/G…).
        # Real Slack posts only where the bot was invited; an unknown channel is not created.
        self.channels: dict[str, list[Json]] = {}
        self.members: dict[str, set[str]] = {}
        self.private: set[str] = set()
        self.ephemeral: list[Json] = []
        self.views: dict[str, Json] = {}
        self.session_resets: list[str] = []
        self.audit_entries: list[Json] = []
        self._calls: list[Call] = []
        self._failures: dict[str, list[_Failure]] = {}
        # Slack's per-method tiers and per-channel post limit, when a test asks for them.
        self.rate_limits: Limits | None = None
        self.rate_limited = 0
        # Seconds every answer waits before it is sent: the round trip to the real Slack, which
        # the fake otherwise answers at once (benchmarks: how the bot copes with a slow Slack).
        self.latency = 0.0
        # More seconds for one method's answers (a slow lookup among fast posts).
        self.method_latency: dict[str, float] = {}
        self._lost_replies: dict[str, int] = {}
        self._callbacks: list[Callable[[Call], None]] = []
        self._last_ts_us = 0
        self._seq = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # Several workspaces outside Grid, installed through OAuth (oauth.v2.access): the app's
        # credentials, codes granted and not yet exchanged, and each issued bot token's (and
        # refresh token's) workspace. Once any is issued, a bot token sees its own workspace's
        # people only, as on Slack; this fake's own team is slack.bot_token's.
        self.oauth_client: tuple[str, str] | None = None
        self.token_rotation = False
        self.token_lifetime = TOKEN_LIFETIME  # seconds, with token rotation on
        self._grants: dict[str, Json] = {}
        self.workspace_tokens: dict[str, str] = {}
        # User tokens issued through OAuth (authed_user): their workspace, its Grid org (None
        # outside Grid) and the user scopes granted.
        self.user_tokens: dict[str, Json] = {}
        self._refresh_tokens: dict[str, str] = {}
        self._user_refresh_tokens: dict[str, str] = {}
        self._workspaces_seen: dict[str, Json] = {}
        self._revoked: set[str] = set()

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        if self._server is None:
            # Slack keeps connections alive (HTTP/1.1), and so does the fake: a new TCP connection
            # per call would make the bot pay for connection set-up that Slack does not cost it.
            server = FakeServer("fake-slack", self._serve, keep_alive=True, idle=10.0)
            self._serve_in_thread(server, "fake-slack")
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/api/"

    @property
    def audit_base_url(self) -> str:
        """Pass as slack_sdk.audit_logs.AuditLogsClient(base_url=...)."""
        return f"{self.url}/audit/v1/"

    def response_url(self, key: str = "1") -> str:
        """A response_url to put in interaction payloads; POSTs to it are recorded."""
        return f"{self.url}/actions/{self.team_id}/{key}/fake"

    # ---- fixtures ---------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        email: str,
        name: str | None = None,
        real_name: str | None = None,
        first_name: str | None = None,
        tz: str = "America/Los_Angeles",
        deleted: bool = False,
        is_bot: bool = False,
        is_admin: bool = False,
        is_owner: bool = False,
        is_primary_owner: bool = False,
        teams: list[str] | None = None,
        locale: str | None = "en-US",
    ) -> Json:
        """``teams``: on Enterprise Grid, the workspaces the person belongs to (default: this
        fake's own ``team_id``). ``locale`` is their Slack language, answered by users.info only
        when asked with include_locale (None: Slack answers none)."""
        user = user_object(
            user_id, email, name=name, real_name=real_name, first_name=first_name, tz=tz,
            deleted=deleted, is_bot=is_bot, is_admin=is_admin, is_owner=is_owner,
            is_primary_owner=is_primary_owner, teams=teams or [self.team_id],
            enterprise_id=self.enterprise_id,
        )  # fmt: skip
        with self._lock:
            self.users[user_id] = user
            if locale is None:
                self.locales.pop(user_id, None)
            else:
                self.locales[user_id] = locale
        return user

    def add_member(self, member: Json) -> None:
        """A user object as Slack documents it (e.g. a member of ``USERS_LIST``), verbatim."""
        with self._lock:
            self.users[member["id"]] = member

    def add_usergroup(
        self, usergroup_id: str, user_ids: list[str], team: str | None = None
    ) -> None:
        """``team``: a group of that workspace (installed through OAuth), which only that
        workspace's token sees; default: every token's."""
        with self._lock:
            self.usergroups[usergroup_id] = list(user_ids)
            if team is not None:
                self.usergroup_teams[usergroup_id] = team

    def add_channel(
        self, channel_id: str, *, bot_member: bool = True, private: bool = False
    ) -> None:
        """A channel that exists in the workspace; the bot is in it unless ``bot_member`` is
        False (never invited: posts answer ``not_in_channel``, as Slack does)."""
        with self._lock:
            self.channels.setdefault(channel_id, [])
            members = self.members.setdefault(channel_id, set())
            if bot_member:
                members.add(self.bot_user_id)
            if private:
                self.private.add(channel_id)

    def invite(self, channel_id: str, *user_ids: str) -> None:
        """``/invite @Securitybot`` (or anyone) into an existing channel."""
        with self._lock:
            self.members[channel_id].update(user_ids or (self.bot_user_id,))

    def remove_from_channel(self, channel_id: str, user_id: str | None = None) -> None:
        """``/remove`` the bot (default) or someone else from a channel."""
        with self._lock:
            self.members[channel_id].discard(user_id or self.bot_user_id)

    # ---- inspection (faults: fake_slack_faults) ----------------------------------------------

    def on_call(self, callback: Callable[[Call], None]) -> None:
        self._callbacks.append(callback)

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def home(self, user_id: str) -> Json | None:
        """The Home tab last published for ``user_id`` (views.publish), or None."""
        with self._lock:
            return self.views.get(f"home:{user_id}")

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """Block until `count` calls to `method` were answered; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [c for c in self._calls if c.method == method]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self._calls]
                    raise TimeoutError(
                        f"{len(found)}/{count} calls to {method} after {timeout}s; saw {seen}"
                    )
                self._changed.wait(left)

    async def wait_for_async(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:
        """wait_for for tests whose event loop also runs the app (must not block the loop)."""
        return await asyncio.to_thread(self.wait_for, method, count, timeout)

    def messages(self, channel: str) -> list[Json]:
        with self._lock:
            return [dict(m) for m in self.channels.get(channel, [])]

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # ---- request plumbing ------------------------------------------------------------------

    def _serve(self, req: BaseHTTPRequestHandler) -> None:
        method, params, headers = read_request(req)
        if method is None:
            send_reply(req, 404, {"ok": False, "error": "not_found"}, {})
            return

        with self._lock:
            try:
                status, payload, extra = self._answer(method, params, headers)
            except Exception:
                # A bug in the fake must surface as a 500, not as a dropped connection.
                log.exception("fake slack failed answering %s", method)
                status, payload, extra = 500, {}, {}
            call = Call(method, params, headers, time.time(), status, payload)
            self._calls.append(call)
            self._changed.notify_all()
            lose = self._lost_replies.get(method, 0) > 0
            if lose:
                self._lost_replies[method] -= 1
        for callback in list(self._callbacks):
            try:
                callback(call)
            except Exception:
                log.exception("fake slack on_call callback failed")
        delay = self.latency + self.method_latency.get(method, 0.0)
        if delay > 0:
            time.sleep(delay)  # this connection's own thread: other calls go on
        if lose:
            req.close_connection = True
            return
        send_reply(req, status, payload, extra)

    def _answer(
        self, method: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Json, dict[str, str]]:
        """Compute the reply; called with the state lock held."""
        fault = self._fault(method, params)
        if fault is not None:
            return fault

        if method == RESPONSE_URL:
            return 200, {"ok": True}, {}
        if method == "oauth.v2.access":  # the app's credentials, not a token
            return 200, self._oauth_v2_access(headers, params), {}
        auth = headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else params.get("token")
        if method == AUDIT_LOGS:
            return self._audit_logs(token, params)
        handler: Callable[[str, dict[str, Any]], Json] | None = getattr(
            self, "_api_" + method.replace(".", "_"), None
        )
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        if not token or not str(token).startswith("xox"):
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token == "xoxb-invalid":
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        if token in self._revoked:
            return 200, {"ok": False, "error": "token_revoked"}, {}
        team = self._workspace_of(str(token))
        if team is None:
            return 200, handler(str(token), params), self._scope_header(str(token))
        # A workspace's bot token sees that workspace's people, and nobody else's.
        everyone = self.users
        self.users = {uid: u for uid, u in everyone.items() if u.get("team_id") == team}
        try:
            return 200, handler(str(token), params), self._scope_header(str(token))
        finally:
            self.users = everyone
