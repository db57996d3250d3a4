"""A local fake of the Slack Web API and Audit Logs API, served over a real socket.

The product talks to it through the unmodified slack_sdk clients, so request encoding
(form vs JSON bodies, GET query strings, bearer tokens) is exercised exactly as in production.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from securitybot.demo._serving import ServedFake
from securitybot.slack.limits import problems, view_problems
from securitybot.slack.tiers import Limits

log = logging.getLogger(__name__)

# Audit Logs calls are not Web API "methods"; they are recorded under this name.
AUDIT_LOGS = "audit.logs"
# Calls to a block-action response_url (see FakeSlack.response_url) are recorded under this name.
RESPONSE_URL = "response_url"

Json = dict[str, Any]

# The scopes a token has unless FakeSlack.token_scopes says otherwise: slack-manifest.yaml's
# bot list for bot tokens, its user list for user tokens (written out here, not imported from
# the product, so a scope the product forgets to ask for shows in the tests).
BOT_TOKEN_SCOPES = (
    "chat:write", "im:write", "im:history", "channels:history", "groups:history",
    "channels:read", "groups:read", "users:read", "users:read.email", "usergroups:read",
    "commands",
)  # fmt: skip
USER_TOKEN_SCOPES = ("admin.users:write", "auditlogs:read")


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float
    status: int = 200
    response: Json = field(default_factory=dict)


@dataclass
class _Failure:
    status: int
    error: str | None
    retry_after: int | None
    remaining: int


class _Server(ThreadingHTTPServer):
    # Handler threads must be joined on close so tests never leak threads.
    daemon_threads = False
    block_on_close = True
    # socketserver's default listen backlog is 5: under load SYNs would be dropped and the
    # bot's connections stall for a 1 s retransmit, which would measure the fake, not the bot.
    request_queue_size = 1024

    def __init__(self, fake: FakeSlack) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def server_close(self) -> None:
        # Keep-alive handler threads wait for their client's next request: end their
        # connections so joining them (block_on_close) does not wait for the idle timeout.
        with self.connections_lock:
            for conn in self.open_connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        super().server_close()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Slack keeps connections alive (HTTP/1.1), and so does the fake: a new TCP connection per
    # call would make the bot pay for connection set-up that real Slack does not cost it.
    protocol_version = "HTTP/1.1"
    timeout = 10
    # An answer goes out in two writes (headers, then body). With Nagle's algorithm on, the
    # body waits for the client to acknowledge the headers, and Linux delays that ACK by 40 ms:
    # every call to the fake took 40 ms on a kept-alive connection, a stall of the fake's own
    # making (Slack's answers carry network latency, not this), which the benchmarks measured.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.open_connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    def do_POST(self) -> None:
        self.server.fake._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fake slack: " + format, *args)


def _decode_json_fields(params: dict[str, Any]) -> dict[str, Any]:
    # Form-encoded clients send blocks/view as JSON strings; Slack decodes them server-side.
    for key in ("blocks", "attachments", "view", "metadata"):
        value = params.get(key)
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


def _refused_blocks(params: dict[str, Any]) -> Json | None:
    """Slack's answer to blocks it will not render (None: acceptable or absent)."""
    blocks = params.get("blocks")
    if blocks is None or blocks == []:
        return None
    if isinstance(blocks, str):
        return {"ok": False, "error": "invalid_blocks_format"}
    errors = problems(blocks) or _sdk_problems(
        lambda: [Block.parse(b).validate_json() for b in blocks]  # type: ignore[union-attr]
    )
    if not errors:
        return None
    return {"ok": False, "error": "invalid_blocks", "response_metadata": {"messages": errors}}


def _sdk_problems(validate: Any) -> list[str]:
    """A second opinion from slack_sdk's Block Kit models, written apart from our limits table
    (``securitybot.slack.limits``), so a wrong limit there cannot make the fake agree with it."""
    try:
        validate()
    except (SlackObjectFormationError, KeyError, TypeError, AttributeError) as exc:
        return [f"[ERROR] {exc}"]
    return []


def _refused_view(view: Any) -> Json | None:
    # Slack answers an over-limit view with invalid_arguments and the same kind of messages.
    errors = view_problems(view) or _sdk_problems(lambda: View(**view).validate_json())
    if not errors:
        return None
    return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": errors}}


class FakeSlack(ServedFake):
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

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        if self._server is None:
            self._serve_in_thread(_Server(self), "fake-slack")
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
        name = name or email.split("@")[0]
        home = (teams or [self.team_id])[0]
        real_name = real_name or name
        try:
            offset = datetime.now(ZoneInfo(tz)).utcoffset()
        except ZoneInfoNotFoundError:
            offset = None
        user: Json = {
            "id": user_id,
            "team_id": home,
            "name": name,
            "deleted": deleted,
            "real_name": real_name,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "is_admin": is_admin or is_owner or is_primary_owner,
            "is_owner": is_owner or is_primary_owner,
            "is_primary_owner": is_primary_owner,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
            "profile": {
                "real_name": real_name,
                "display_name": name,
                "first_name": first_name or real_name.split(" ")[0],
                "last_name": " ".join(real_name.split(" ")[1:]),
                "email": email,
                "team": home,
            },
        }
        if self.enterprise_id:
            # docs.slack.dev/reference/objects/user-object: "enterprise_user: An object
            # containing info related to an Enterprise Grid user", with the org's id and name,
            # admin and owner flags, and "teams: An array of workspace IDs that are in the
            # Enterprise Grid organization and which this user belongs to".
            user["enterprise_user"] = {
                "id": user_id, "enterprise_id": self.enterprise_id,
                "enterprise_name": "Fake Org", "is_admin": is_admin, "is_owner": is_owner,
                "teams": list(teams or [self.team_id]),
            }  # fmt: skip
        with self._lock:
            self.users[user_id] = user
            if locale is None:
                self.locales.pop(user_id, None)
            else:
                self.locales[user_id] = locale
        return user

    def add_usergroup(self, usergroup_id: str, user_ids: list[str]) -> None:
        with self._lock:
            self.usergroups[usergroup_id] = list(user_ids)

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

    # ---- fault injection and inspection ----------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int = 200,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls to `method` fail.

        status=429 answers ratelimited with Retry-After (default 1); status>=500 answers a
        server error; otherwise HTTP 200 {"ok": false, "error": error}.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        if status == 200 and error is None:
            raise ValueError("fail_next needs an error name or a non-200 status")
        with self._lock:
            self._failures.setdefault(method, []).append(
                _Failure(status, error, retry_after, times)
            )

    def enforce_rate_limits(self, limits: Limits | None = None) -> None:
        """Answer 429 with Retry-After, as Slack does, past each method's tier and past the
        per-channel post rate (``securitybot.slack.tiers``; ``Limits(scale=...)`` to speed up)."""
        with self._lock:
            self.rate_limits = limits or Limits()

    def lose_next_reply(self, method: str, times: int = 1) -> None:
        """Do the next `times` calls to `method`, then drop the connection without answering:
        the network failing after Slack acted, so the caller cannot know that it did."""
        with self._lock:
            self._lost_replies[method] = self._lost_replies.get(method, 0) + times

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

    def _serve(self, req: _Handler) -> None:
        split = urlsplit(req.path)
        length = int(req.headers.get("Content-Length") or 0)
        raw = req.rfile.read(length).decode("utf-8") if length else ""
        headers = {k: v for k, v in req.headers.items()}
        params: dict[str, Any] = dict(parse_qsl(split.query, keep_blank_values=True))
        ctype = req.headers.get("Content-Type", "")
        if raw and "json" in ctype:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            if isinstance(body, dict):
                params.update(body)
        elif raw:
            params.update(parse_qsl(raw, keep_blank_values=True))
        _decode_json_fields(params)

        if split.path.startswith("/api/"):
            method = split.path[len("/api/") :]
        elif split.path == "/audit/v1/logs":
            method = AUDIT_LOGS
        elif split.path.startswith("/actions/"):
            method = RESPONSE_URL
        else:
            self._send(req, 404, {"ok": False, "error": "not_found"}, {})
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
        self._send(req, status, payload, extra)

    @staticmethod
    def _send(req: _Handler, status: int, payload: Json, extra: dict[str, str]) -> None:
        if status >= 500 and not payload:
            data, ctype = b"<html><body>Internal Server Error</body></html>", "text/html"
        else:
            data, ctype = json.dumps(payload).encode(), "application/json; charset=utf-8"
        # A client killed mid-call (crash tests) has gone: Slack would not mind either.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            req.send_response(status)
            req.send_header("Content-Type", ctype)
            req.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                req.send_header(k, v)
            req.end_headers()
            req.wfile.write(data)

    def _answer(
        self, method: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Json, dict[str, str]]:
        """Compute the reply; called with the state lock held."""
        if self.rate_limits is not None:
            channel = str(params.get("channel") or "") or None
            if channel and channel[:1] in "UW" and channel in self.users:
                channel = "D" + channel  # a post to a user id lands in their DM
            wait = self.rate_limits.try_call(method, channel, time.monotonic())
            if wait > 0:
                self.rate_limited += 1
                # Slack's Retry-After is whole seconds.
                retry = str(max(1, math.ceil(wait)))
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": retry}
        failures = self._failures.get(method)
        if failures:
            failure = failures[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                failures.pop(0)
            if failure.status == 429:
                return (
                    429,
                    {"ok": False, "error": "ratelimited"},
                    {"Retry-After": str(failure.retry_after)},
                )
            if failure.status >= 500:
                body = {"ok": False, "error": failure.error} if failure.error else {}
                return failure.status, body, {}
            return failure.status, {"ok": False, "error": failure.error}, {}

        if method == RESPONSE_URL:
            return 200, {"ok": True}, {}
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
        return 200, handler(str(token), params), self._scope_header(str(token))

    def _scope_header(self, token: str) -> dict[str, str]:
        """Slack names the token's scopes in ``x-oauth-scopes`` on every Web API answer."""
        default = BOT_TOKEN_SCOPES if token.startswith("xoxb-") else USER_TOKEN_SCOPES
        scopes = self.token_scopes.get(token, list(default))
        return {"x-oauth-scopes": ",".join(scopes)}

    def _audit_logs(
        self, token: str | None, params: dict[str, Any]
    ) -> tuple[int, Json, dict[str, str]]:
        # The Audit Logs API uses real HTTP status codes, unlike the Web API.
        if not token:
            return 401, {"ok": False, "error": "not_authed"}, {}
        if token == "xoxb-invalid":
            return 401, {"ok": False, "error": "invalid_auth"}, {}
        if not token.startswith("xoxp-") or (self.admin_token and token != self.admin_token):
            return 403, {"ok": False, "error": "not_allowed_token_type"}, {}
        actions = set(filter(None, str(params.get("action", "")).split(",")))
        try:
            oldest = int(params.get("oldest") or 0)
            latest = int(params.get("latest") or 2**63)
            cursor = params.get("cursor")
            start = int(base64.b64decode(cursor).decode().split(":")[1]) if cursor else 0
            limit = int(params.get("limit") or 100)
        except (ValueError, IndexError):
            return 400, {"ok": False, "error": "invalid_arguments"}, {}
        entries = [
            e
            for e in self.audit_entries
            if (not actions or e.get("action") in actions)
            and oldest <= e.get("date_create", 0) <= latest
        ]
        page = entries[start : start + limit]
        more = start + limit < len(entries)
        cursor = base64.b64encode(f"offset:{start + limit}".encode()).decode() if more else ""
        return 200, {"entries": page, "response_metadata": {"next_cursor": cursor}}, {}

    def _next_ts(self) -> str:
        # Real Slack timestamps are wall-clock microseconds, unique per channel.
        now_us = int(time.time() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:08d}"

    # ---- Web API methods: each runs with the state lock held -----------------------------

    def _org_token(self, token: str) -> bool:
        return self.org_install and token.startswith("xoxb-")

    def _api_auth_test(self, token: str, params: dict[str, Any]) -> Json:
        reply: Json = {"ok": True, "url": "https://fake.slack.com/", "team": "Fake Co"}
        reply |= {"team_id": self.team_id, "is_enterprise_install": False}
        if self.enterprise_id:
            reply["enterprise_id"] = self.enterprise_id
        if self._org_token(token):
            # An org-wide install's token belongs to the org, not to one workspace.
            reply |= {"team": "Fake Org", "team_id": self.enterprise_id,
                      "is_enterprise_install": True}  # fmt: skip
        if token.startswith("xoxb-"):
            return reply | {
                "user": "securitybot",
                "user_id": self.bot_user_id,
                "bot_id": self.bot_id,
            }
        return reply | {"user": "admin", "user_id": "UADMIN"}

    def _api_users_info(self, token: str, params: dict[str, Any]) -> Json:
        # docs.slack.dev/reference/methods/users.info: include_locale=true adds the user's
        # "locale" ("en-US"); without it the answer has none. users.lookupByEmail has no such
        # argument.
        uid = str(params.get("user", ""))
        user = self.users.get(uid)
        if not user:
            return {"ok": False, "error": "user_not_found"}
        if str(params.get("include_locale", "")).lower() in ("1", "true") and uid in self.locales:
            user = {**user, "locale": self.locales[uid]}
        return {"ok": True, "user": user}

    def _api_users_list(self, token: str, params: dict[str, Any]) -> Json:
        """Every member, deactivated ones and bots included, in cursor pages of ``limit`` (at
        most 1,000; none: all at once), shaped as Slack's documented example
        (``slack_examples.USERS_LIST``: ok, members, cache_ts, response_metadata.next_cursor;
        docs.slack.dev/reference/methods/users.list). The cursor is Slack's form, base64 of
        ``user:<id>`` of the next member."""
        members = [self.users[uid] for uid in sorted(self.users)]
        if self._org_token(token):
            team = params.get("team_id")
            if not team:
                # "team_id: encoded team id to list users in, required if org token is used"
                # (docs.slack.dev/reference/methods/users.list).
                return {"ok": False, "error": "missing_argument"}
            members = [m for m in members if team in _teams_of(m)]
        try:
            limit = min(1000, int(params.get("limit") or 0)) or len(members) or 1
            after = base64.b64decode(str(params["cursor"])).decode() if params.get("cursor") else ""
        except (ValueError, TypeError):
            return {"ok": False, "error": "invalid_cursor"}
        if after and not after.startswith("user:"):
            return {"ok": False, "error": "invalid_cursor"}
        start = 0
        if after:
            start = next((i for i, m in enumerate(members) if m["id"] >= after[5:]), len(members))
        page, rest = members[start : start + limit], members[start + limit :]
        if str(params.get("include_locale", "")).lower() in ("1", "true"):
            # users.list's include_locale, as users.info's: "locale" on each member.
            page = [{**m, "locale": self.locales[m["id"]]} if m["id"] in self.locales else m
                    for m in page]  # fmt: skip
        cursor = base64.b64encode(f"user:{rest[0]['id']}".encode()).decode() if rest else ""
        return {"ok": True, "members": page, "cache_ts": int(time.time()),
                "response_metadata": {"next_cursor": cursor}}  # fmt: skip

    def add_member(self, member: Json) -> None:
        """A user object as Slack documents it (e.g. a member of ``USERS_LIST``), verbatim."""
        with self._lock:
            self.users[member["id"]] = member

    def _api_users_lookupByEmail(self, token: str, params: dict[str, Any]) -> Json:
        # docs.slack.dev/reference/methods/users.lookupByEmail: a deactivated account is not
        # found by email ("users_not_found"), unlike users.info, which answers deleted: true.
        email = str(params.get("email", "")).lower()
        for user in self.users.values():
            found = str((user.get("profile") or {}).get("email") or "").lower()
            if found == email and not user.get("deleted"):
                return {"ok": True, "user": user}
        return {"ok": False, "error": "users_not_found"}

    def _api_conversations_info(self, token: str, params: dict[str, Any]) -> Json:
        """The documented example answer (docs.slack.dev/reference/methods/conversations.info,
        "Typical success response"), with this channel's id, privacy and the bot's membership;
        ``channel_not_found`` for a channel that does not exist or a private one the bot is
        not in."""
        cid = self._channel_id(str(params.get("channel", "")))
        if cid is None or cid not in self.members:
            return {"ok": False, "error": "channel_not_found"}
        private = cid in self.private
        channel: Json = {
            "id": cid, "name": "general", "is_channel": not private, "is_group": private,
            "is_im": False, "created": 1449252889, "creator": "W012A3BCD", "is_archived": False,
            "is_general": True, "unlinked": 0, "name_normalized": "general",
            "is_read_only": False, "is_shared": False, "parent_conversation": None,
            "is_ext_shared": False, "is_org_shared": False, "pending_shared": [],
            "is_pending_ext_shared": False, "is_member": self.bot_user_id in self.members[cid],
            "is_private": private, "is_mpim": False, "last_read": "1502126650.228446",
            "topic": {"value": "For public discussion of generalities",
                      "creator": "W012A3BCD", "last_set": 1449709364},
            "purpose": {"value": "This part of the workspace is for fun. Make fun here.",
                        "creator": "W012A3BCD", "last_set": 1449709364},
            "previous_names": ["specifics", "abstractions", "etc"],
        }  # fmt: skip
        return {"ok": True, "channel": channel}

    def _api_conversations_open(self, token: str, params: dict[str, Any]) -> Json:
        if params.get("channel"):
            cid = self._channel_id(str(params["channel"]))
            if cid is None:
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "no_op": True, "already_open": True, "channel": {"id": cid}}
        raw = params.get("users", "")
        ids = raw if isinstance(raw, list) else [u for u in str(raw).split(",") if u]
        if not ids:
            return {"ok": False, "error": "users_list_not_supplied"}
        for uid in ids:
            if uid not in self.users:
                return {"ok": False, "error": "user_not_found"}
            if self.users[uid]["deleted"]:
                return {"ok": False, "error": "user_disabled"}
        # DM ids are stable per user so repeated opens (and tests) agree on the channel.
        cid = "D" + ids[0] if len(ids) == 1 else "G" + "".join(sorted(ids))
        existing = cid in self.channels
        self.channels.setdefault(cid, [])
        return {"ok": True, "no_op": existing, "already_open": existing, "channel": {"id": cid}}

    def _channel_id(self, channel: str) -> str | None:
        """Resolve what Slack accepts as a channel argument, or None for channel_not_found."""
        if channel[:1] in "UW" and channel in self.users:
            channel = "D" + channel
        if channel in self.channels:
            if channel in self.private and self.bot_user_id not in self.members[channel]:
                return None  # a private channel the bot is not in is invisible to it
            return channel
        if channel.startswith("D") and channel[1:] in self.users:
            self.channels[channel] = []
            return channel
        return None

    def _outside(self, cid: str) -> bool:
        """The bot is not a member of this channel (DMs always have it)."""
        return cid in self.members and self.bot_user_id not in self.members[cid]

    def _api_chat_postMessage(self, token: str, params: dict[str, Any]) -> Json:
        cid = self._channel_id(str(params.get("channel", "")))
        if cid is None:
            return {"ok": False, "error": "channel_not_found"}
        if self._outside(cid):
            # docs.slack.dev/reference/methods/chat.postMessage, Errors: "not_in_channel:
            # Cannot post user messages to a channel they are not in."
            return {"ok": False, "error": "not_in_channel"}
        if not any(params.get(k) for k in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        if refused := _refused_blocks(params):
            return refused
        message: Json = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id}
        message |= {"team": self.team_id, "text": params.get("text", ""), "ts": self._next_ts()}
        for key in ("blocks", "attachments", "thread_ts", "metadata"):
            if params.get(key):
                message[key] = params[key]
        self.channels[cid].append(message)
        return {"ok": True, "channel": cid, "ts": message["ts"], "message": dict(message)}

    def _api_conversations_history(self, token: str, params: dict[str, Any]) -> Json:
        """Newest first, ``oldest``/``latest`` exclusive unless ``inclusive``; message metadata
        only with ``include_all_metadata``; cursor pages of ``limit`` (default 100, max 999).
        https://docs.slack.dev/reference/methods/conversations.history"""
        cid = self._channel_id(str(params.get("channel", "")))
        if cid is None or self._outside(cid):
            return {"ok": False, "error": "channel_not_found"}
        try:
            oldest = float(params.get("oldest") or 0)
            latest = float(params.get("latest") or time.time() + 1)
            limit = min(999, int(params.get("limit") or 100))
            start = int(base64.b64decode(params["cursor"]).decode()) if params.get("cursor") else 0
        except (ValueError, TypeError):
            return {"ok": False, "error": "invalid_arguments"}
        truthy = ("1", "true", "True", True, 1)
        inclusive = params.get("inclusive") in truthy
        metadata = params.get("include_all_metadata") in truthy
        found = [
            m
            for m in reversed(self.channels[cid])
            if (oldest <= float(m["ts"]) if inclusive else oldest < float(m["ts"]))
            and (float(m["ts"]) <= latest if inclusive else float(m["ts"]) < latest)
        ]
        page = [
            {k: v for k, v in m.items() if metadata or k != "metadata"}
            for m in found[start : start + limit]
        ]
        more = start + limit < len(found)
        cursor = base64.b64encode(str(start + limit).encode()).decode() if more else ""
        return {"ok": True, "messages": page, "has_more": more, "pin_count": 0,
                "response_metadata": {"next_cursor": cursor}}  # fmt: skip

    def _api_chat_postEphemeral(self, token: str, params: dict[str, Any]) -> Json:
        cid = self._channel_id(str(params.get("channel", "")))
        if cid is None:
            return {"ok": False, "error": "channel_not_found"}
        if str(params.get("user", "")) not in self.users:
            return {"ok": False, "error": "user_not_in_channel"}
        if refused := _refused_blocks(params):
            return refused
        ts = self._next_ts()
        self.ephemeral.append(dict(params, channel=cid, ts=ts))
        return {"ok": True, "message_ts": ts}

    def _find_message(self, params: dict[str, Any]) -> tuple[str, Json] | None:
        channel = str(params.get("channel", ""))
        if channel[:1] in ("U", "W"):
            # chat.update and chat.delete take the channel "containing the message"
            # (docs.slack.dev/reference/methods/chat.update): a DM's id (D…), the one a post to a
            # user id answers with, never the user id itself.
            return None
        cid = self._channel_id(channel)
        for message in self.channels.get(cid or "", []):
            if message["ts"] == str(params.get("ts", "")):
                return cid or "", message
        return None

    def _api_chat_update(self, token: str, params: dict[str, Any]) -> Json:
        found = self._find_message(params)
        if found is None:
            return {"ok": False, "error": "message_not_found"}
        cid, message = found
        if refused := _refused_blocks(params):
            return refused
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in params:
                message[key] = params[key]
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        reply: Json = {"ok": True, "channel": cid, "ts": message["ts"], "text": message["text"]}
        return reply | {"message": dict(message)}

    def _api_chat_getPermalink(self, token: str, params: dict[str, Any]) -> Json:
        # docs.slack.dev/reference/methods/chat.getPermalink: {"ok": true, "channel": ...,
        # "permalink": "https://ghostbusters.slack.com/archives/C1H9RESGA/p135854651500008"}
        found = self._find_message({**params, "ts": params.get("message_ts", "")})
        if found is None:
            return {"ok": False, "error": "message_not_found"}
        cid, message = found
        stamp = str(message["ts"]).replace(".", "")
        return {"ok": True, "channel": cid,
                "permalink": f"https://fake-slack.example.com/archives/{cid}/p{stamp}"}  # fmt: skip

    def _api_chat_delete(self, token: str, params: dict[str, Any]) -> Json:
        found = self._find_message(params)
        if found is None:
            return {"ok": False, "error": "message_not_found"}
        cid, message = found
        self.channels[cid].remove(message)
        return {"ok": True, "channel": cid, "ts": message["ts"]}

    def _api_views_open(self, token: str, params: dict[str, Any]) -> Json:
        if not params.get("trigger_id"):
            return {"ok": False, "error": "invalid_arguments"}
        view = params.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if refused := _refused_view(view):
            return refused
        view_id = self._next_id("V")
        stored: Json = dict(view, id=view_id, team_id=self.team_id, root_view_id=view_id)
        stored |= {"state": {"values": {}}, "hash": self._next_id("h."), "app_id": "A1"}
        self.views[view_id] = stored
        return {"ok": True, "view": stored}

    def _api_views_update(self, token: str, params: dict[str, Any]) -> Json:
        view_id = params.get("view_id")
        if not view_id and params.get("external_id"):
            ext = params["external_id"]
            view_id = next((k for k, v in self.views.items() if v.get("external_id") == ext), None)
        view = params.get("view")
        if not view_id or view_id not in self.views:
            return {"ok": False, "error": "not_found"}
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if refused := _refused_view(view):
            return refused
        stored = dict(self.views[view_id]) | view | {"hash": self._next_id("h.")}
        self.views[view_id] = stored
        return {"ok": True, "view": stored}

    def _api_views_publish(self, token: str, params: dict[str, Any]) -> Json:
        user_id, view = str(params.get("user_id", "")), params.get("view")
        if user_id not in self.users:
            return {"ok": False, "error": "user_not_found"}
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if refused := _refused_view(view):
            return refused
        view_id = self._next_id("V")
        stored: Json = dict(view, id=view_id, team_id=self.team_id, hash=self._next_id("h."))
        self.views[f"home:{user_id}"] = stored
        return {"ok": True, "view": stored}

    def _api_auth_teams_list(self, token: str, params: dict[str, Any]) -> Json:
        # docs.slack.dev/reference/methods/auth.teams.list, "Typical success response":
        # {"ok": true, "teams": [{"name": "Shinichi's workspace", "id": "T12345678"}, ...],
        #  "response_metadata": {"next_cursor": "..."}} (one page here).
        teams = self.workspaces if self._org_token(token) else [self.team_id]
        return {"ok": True, "teams": [{"name": f"Workspace {t}", "id": t} for t in teams],
                "response_metadata": {"next_cursor": ""}}  # fmt: skip

    def _api_usergroups_users_list(self, token: str, params: dict[str, Any]) -> Json:
        if self._org_token(token) and not params.get("team_id"):
            # "team_id: encoded team id where the user group exists, required if org token
            # is used" (docs.slack.dev/reference/methods/usergroups.users.list); without it
            # Slack answers missing_argument ("A required argument is missing.").
            return {"ok": False, "error": "missing_argument"}
        users = self.usergroups.get(str(params.get("usergroup", "")))
        if users is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(users)}

    def _api_admin_users_session_reset(self, token: str, params: dict[str, Any]) -> Json:
        user_token = token.startswith(("xoxp-", "xoxa-"))
        if not user_token or (self.admin_token is not None and token != self.admin_token):
            return {"ok": False, "error": "not_allowed_token_type"}
        user = self.users.get(str(params.get("user_id", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        if user["is_primary_owner"]:
            return {"ok": False, "error": "cannot_reset_primary_owner"}
        if user["is_bot"]:
            return {"ok": False, "error": "cannot_reset_bot"}
        self.session_resets.append(user["id"])
        return {"ok": True}


def _teams_of(member: Json) -> list[str]:
    """The workspaces a member belongs to: on Grid, ``enterprise_user.teams``."""
    teams = (member.get("enterprise_user") or {}).get("teams")
    return list(teams) if teams else [str(member.get("team_id", ""))]
