"""A fake Slack Web API that enforces Slack's documented rate limits, scaled in time
(bench/storm.py drives it; tests/fakes/test_storm_slack.py checks it).

Slack's limits, as documented at https://docs.slack.dev/apis/web-api/rate-limits ("Rate
limits"): each Web API method is limited "per API method per workspace/team per app" by tier
(Tier 1 1+, Tier 2 20+, Tier 3 50+, Tier 4 100+ per minute, bursts tolerated);
``chat.postMessage`` is the special tier: "generally allows posting one message per second per
channel, while also maintaining a workspace-wide limit", which the method's own page
(https://docs.slack.dev/reference/methods/chat.postMessage, "Rate limiting") puts at "several
hundred messages per minute": 300 here, the floor of "several hundred". Over a limit Slack
answers HTTP 429 with a ``Retry-After`` header (seconds) and ``{"ok": false, "error":
"ratelimited"}``. Each method's tier is on its reference page: ``users.list`` Tier 2,
``users.lookupByEmail`` / ``conversations.open`` / ``chat.update`` / ``conversations.info``
Tier 3, ``users.info`` / ``auth.test`` Tier 4 (``securitybot.slack.tiers.METHOD_TIER``).

The per-method and per-channel side is ``securitybot.slack.tiers.Limits.try_call`` ("Slack's
side" of the tiers, the same buckets the product's tests use); methods that table does not
know (``users.list``, ``conversations.info``) get a bucket of the same shape, and posts also
take a token from a workspace-wide bucket. ``scale`` multiplies every rate: at 60 a
Slack-minute lasts one second; bursts stay the same number of calls. ``Retry-After`` is what
Slack would say (whole Slack-seconds) divided by the scale, so it is fractional for any scale
above 1: the client waits the scaled time.

Answers are Slack's documented example responses with this workspace's ids in them: the member
objects of ``users.list`` / ``users.info`` / ``users.lookupByEmail`` have the shape of the
"Typical success response" on https://docs.slack.dev/reference/methods/users.list (Egon
Spengler, cursor ``dXNlcjpVMEc5V0ZYTlo=``, i.e. base64 ``user:<next id>``); ``limit`` above 1000
is refused with ``invalid_limit`` as that page says ("must be an integer no larger than 1000").
``chat.postMessage`` takes a channel id, or a user id: Slack then posts in the app's DM with
that person and answers with the ``D…`` channel id (the page's "Channels" section: "pass the
user's ID as the channel argument ... the message will be posted to the app's DM").
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from securitybot.slack.tiers import METHOD_TIER, PER_MINUTE, POST, Limits
from securitybot.token_bucket import Bucket

Json = dict[str, Any]

# Tiers of the methods securitybot.slack.tiers does not list (each method's reference page).
EXTRA_TIERS = {"users.list": 2, "conversations.info": 3}
# chat.postMessage's workspace-wide ceiling: "several hundred messages per minute".
WORKSPACE_POSTS_PER_MINUTE = 300.0
USERS_LIST_MAX = 1000  # users.list: "must be an integer no larger than 1000"


@dataclass
class StormLimits:
    """Slack's side of the limits for one workspace, ``scale`` times faster."""

    scale: float = 1.0
    posts_per_minute: float = WORKSPACE_POSTS_PER_MINUTE
    tiers: Limits = field(init=False)
    extra: dict[str, Bucket] = field(default_factory=dict)
    workspace_posts: Bucket = field(init=False)
    own_post_ceiling: bool = field(init=False)

    def __post_init__(self) -> None:
        # Limits' burst is ``burst_seconds`` of the (scaled) rate: keep it that many
        # Slack-seconds, i.e. the same number of calls whatever the scale.
        burst = Limits().burst_seconds
        self.tiers = Limits(scale=self.scale, burst_seconds=burst / self.scale,
                            per_minute={POST: self.posts_per_minute})  # fmt: skip
        rate = self.posts_per_minute / 60.0 * self.scale
        self.workspace_posts = Bucket(rate, max(1.0, rate * self.tiers.burst_seconds))
        # A Limits that knows the workspace post ceiling itself keeps it (one bucket, not two).
        self.own_post_ceiling = self.tiers.method(POST) is None

    def rate_per_minute(self, method: str) -> float | None:
        """The documented calls per (Slack-)minute of ``method``; None: not limited here."""
        tier = METHOD_TIER.get(method) or EXTRA_TIERS.get(method)
        return PER_MINUTE[tier] if tier else None

    def _extra(self, method: str) -> Bucket | None:
        if method in METHOD_TIER or method not in EXTRA_TIERS:
            return None
        bucket = self.extra.get(method)
        if bucket is None:
            rate = PER_MINUTE[EXTRA_TIERS[method]] / 60.0 * self.scale
            bucket = self.extra[method] = Bucket(rate, max(1.0, rate * self.tiers.burst_seconds))
        return bucket

    def try_call(self, method: str, channel: str | None, now: float) -> float:
        """0.0 if the call is within every limit (and counted), else the seconds until it
        would be (nothing counted)."""
        if method == POST:
            own = self.workspace_posts if self.own_post_ceiling else None
        else:
            own = self._extra(method)
        if own is not None:
            wait = own.take(now)
            if wait > 0:
                return wait
        wait = self.tiers.try_call(method, channel, now)
        if wait > 0 and own is not None:
            own.tokens += 1.0  # give back what the refused call took
        return wait


@dataclass
class Record:
    method: str
    at: float  # time.monotonic()
    status: int
    channel: str = ""  # the conversation a post landed in (D… for a DM)


def _member(team: str, uid: str, email: str, name: str, real_name: str) -> Json:
    """A member object shaped as users.list's documented example (Egon Spengler)."""
    return {
        "id": uid, "team_id": team, "name": name, "deleted": False, "color": "9f69e7",
        "real_name": real_name, "tz": "America/Los_Angeles",
        "tz_label": "Pacific Daylight Time", "tz_offset": -25200,
        "profile": {
            "avatar_hash": "ge3b51ca72de", "status_text": "Print is dead",
            "status_emoji": ":books:", "real_name": real_name, "display_name": name,
            "real_name_normalized": real_name, "display_name_normalized": name,
            "first_name": real_name.split(" ")[0],
            "last_name": " ".join(real_name.split(" ")[1:]), "email": email,
            "image_24": "https://.../avatar/e3b51ca72dee4ef87916ae2b9240df50.jpg",
            "image_32": "https://.../avatar/e3b51ca72dee4ef87916ae2b9240df50.jpg",
            "image_48": "https://.../avatar/e3b51ca72dee4ef87916ae2b9240df50.jpg",
            "image_72": "https://.../avatar/e3b51ca72dee4ef87916ae2b9240df50.jpg",
            "image_192": "https://.../avatar/e3b51ca72dee4ef87916ae2b9240df50.jpg",
            "image_512": "https://.../avatar/e3b51ca72dee4ef87916ae2b9240df50.jpg",
            "team": team,
        },
        "is_admin": False, "is_owner": False, "is_primary_owner": False,
        "is_restricted": False, "is_ultra_restricted": False, "is_bot": False,
        "updated": 1502138686, "is_app_user": False, "has_2fa": False,
    }  # fmt: skip


class StormSlack:
    """The fake, served by aiohttp on its own thread and event loop. ``start()``, point the
    bot's ``slack.api_url`` at ``base_url``, read ``records`` / ``dm_at`` / ``counts()``."""

    def __init__(self, scale: float = 1.0, *, team_id: str = "T012AB3C4",
                 posts_per_minute: float = WORKSPACE_POSTS_PER_MINUTE) -> None:  # fmt: skip
        self.scale = scale
        self.team_id = team_id
        self.bot_user_id = "UBOT"
        self.limits = StormLimits(scale, posts_per_minute)
        self.users: dict[str, Json] = {}
        self.by_email: dict[str, str] = {}
        self.channels: dict[str, list[Json]] = {}
        self.records: list[Record] = []
        self.dm_at: dict[str, float] = {}  # user id -> monotonic time of the first DM
        self._lock = threading.Lock()
        self._seq = 0
        self._last_ts_us = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ---- fixtures ------------------------------------------------------------------------

    def add_user(self, uid: str, email: str, real_name: str) -> None:
        name = email.split("@")[0]
        with self._lock:
            self.users[uid] = _member(self.team_id, uid, email, name, real_name)
            self.by_email[email.lower()] = uid

    def add_channel(self, cid: str) -> None:
        with self._lock:
            self.channels.setdefault(cid, [])

    # ---- inspection ----------------------------------------------------------------------

    def counts(self) -> tuple[Counter[str], Counter[str]]:
        """(calls per method, 429 answers per method)."""
        with self._lock:
            calls = Counter(r.method for r in self.records)
            limited = Counter(r.method for r in self.records if r.status == 429)
        return calls, limited

    def posts_to(self, channel: str) -> int:
        with self._lock:
            return sum(1 for m in self.channels.get(channel, []) if m.get("posted"))

    # ---- lifecycle -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def start(self) -> StormSlack:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="storm-slack",
                                        daemon=True)  # fmt: skip
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake Slack did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        loop.run_until_complete(site.start())
        server = getattr(site, "_server", None)
        self.port = server.sockets[0].getsockname()[1] if server else 0
        ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop = None

    def __enter__(self) -> StormSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- requests ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: Json = dict(request.query)
        if request.can_read_body:
            if "json" in request.content_type:
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
            else:
                params.update(await request.post())
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        token = token or str(params.get("token") or "")
        with self._lock:
            status, payload, headers, channel = self._answer(method, params, token)
            self.records.append(Record(method, time.monotonic(), status, channel))
        return web.json_response(payload, status=status, headers=headers)

    def _answer(
        self, method: str, params: Json, token: str
    ) -> tuple[int, Json, dict[str, str], str]:
        now = time.monotonic()
        channel = str(params.get("channel") or "") or None
        if method == POST and channel and channel[:1] in "UW":
            channel = "D" + channel  # a post to a user id lands in (and is paced as) the DM
        wait = self.limits.try_call(method, channel, now)
        if wait > 0:
            # Slack's Retry-After is whole seconds: whole Slack-seconds, scaled to real time.
            retry = max(1, math.ceil(wait * self.scale)) / self.scale
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": f"{retry:.3f}"}, ""
        if not token.startswith("xox"):
            return 200, {"ok": False, "error": "not_authed"}, {}, ""
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}, ""
        reply: Json = handler(params)
        landed = str(reply.get("channel") or "") if method == POST and reply.get("ok") else ""
        if landed.startswith("D") and landed[1:] not in self.dm_at:
            self.dm_at[landed[1:]] = now
        return 200, reply, {}, landed

    def _next_ts(self) -> str:
        now_us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
        self._last_ts_us = now_us
        return f"{now_us // 1_000_000}.{now_us % 1_000_000:06d}"

    # ---- methods (documented example answers; called with the lock held) -----------------

    def _api_auth_test(self, params: Json) -> Json:
        # https://docs.slack.dev/reference/methods/auth.test, "Typical success response"
        return {"ok": True, "url": "https://subarachnoid.slack.com/",
                "team": "Subarachnoid Workspace", "user": "securitybot",
                "team_id": self.team_id, "user_id": self.bot_user_id,
                "bot_id": "B02D5D5D5D5", "is_enterprise_install": False}  # fmt: skip

    def _api_users_list(self, params: Json) -> Json:
        try:
            limit = int(params.get("limit") or 0)
            cursor = str(params.get("cursor") or "")
            start_id = base64.b64decode(cursor).decode().removeprefix("user:") if cursor else ""
        except ValueError:
            return {"ok": False, "error": "invalid_cursor"}
        if limit > USERS_LIST_MAX:
            return {"ok": False, "error": "invalid_limit"}
        ids = sorted(self.users)
        start = ids.index(start_id) if start_id in self.users else 0
        if cursor and start_id not in self.users:
            return {"ok": False, "error": "invalid_cursor"}
        # No limit: Slack tries to return everything; this fake caps it at the page maximum.
        end = start + (limit or USERS_LIST_MAX)
        page = [self.users[u] for u in ids[start:end]]
        more = base64.b64encode(f"user:{ids[end]}".encode()).decode() if end < len(ids) else ""
        return {"ok": True, "members": page, "cache_ts": int(time.time()),
                "response_metadata": {"next_cursor": more}}  # fmt: skip

    def _api_users_info(self, params: Json) -> Json:
        user = self.users.get(str(params.get("user") or ""))
        return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}

    def _api_users_lookupByEmail(self, params: Json) -> Json:
        uid = self.by_email.get(str(params.get("email") or "").lower())
        if uid is None:
            return {"ok": False, "error": "users_not_found"}
        return {"ok": True, "user": self.users[uid]}

    def _api_conversations_info(self, params: Json) -> Json:
        cid = str(params.get("channel") or "")
        if cid not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        # https://docs.slack.dev/reference/methods/conversations.info (abridged example)
        return {"ok": True, "channel": {"id": cid, "name": "security", "is_channel": True,
                                        "is_private": False, "is_member": True,
                                        "is_archived": False, "is_im": False}}  # fmt: skip

    def _api_conversations_open(self, params: Json) -> Json:
        # https://docs.slack.dev/reference/methods/conversations.open: {"ok": true,
        # "channel": {"id": "D069C7QFK"}}, with no_op / already_open when it existed.
        raw = params.get("users") or ""
        ids = raw if isinstance(raw, list) else [u for u in str(raw).split(",") if u]
        if len(ids) != 1:
            return {"ok": False, "error": "users_list_not_supplied"}
        if ids[0] not in self.users:
            return {"ok": False, "error": "user_not_found"}
        cid = "D" + ids[0]
        existed = cid in self.channels
        self.channels.setdefault(cid, [])
        return {"ok": True, "no_op": existed, "already_open": existed, "channel": {"id": cid}}

    def _conversation(self, channel: str) -> str | None:
        if channel[:1] in "UW":
            channel = "D" + channel
        if channel.startswith("D") and channel[1:] in self.users:
            self.channels.setdefault(channel, [])
        return channel if channel in self.channels else None

    def _api_chat_postMessage(self, params: Json) -> Json:
        cid = self._conversation(str(params.get("channel") or ""))
        if cid is None:
            return {"ok": False, "error": "channel_not_found"}
        if not any(params.get(k) for k in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        # https://docs.slack.dev/reference/methods/chat.postMessage, "Typical success response"
        message: Json = {"bot_id": "B123ABC456", "type": "message", "text": params.get("text"),
                         "user": self.bot_user_id, "ts": self._next_ts(), "app_id": "A123ABC456",
                         "team": self.team_id}  # fmt: skip
        self.channels[cid].append(message | {"posted": True})
        return {"ok": True, "channel": cid, "ts": message["ts"], "message": message}

    def _api_chat_update(self, params: Json) -> Json:
        # chat.update takes the channel id the post answered with, never a user id.
        cid = str(params.get("channel") or "")
        ts = str(params.get("ts") or "")
        for message in self.channels.get(cid, []):
            if message["ts"] == ts:
                message["text"] = params.get("text")
                # https://docs.slack.dev/reference/methods/chat.update, "Typical success response"
                return {"ok": True, "channel": cid, "ts": ts, "text": params.get("text"),
                        "message": {k: v for k, v in message.items() if k != "posted"}}  # fmt: skip
        return {"ok": False, "error": "message_not_found"}

    def _api_views_publish(self, params: Json) -> Json:
        view = params.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        return {"ok": True, "view": {"id": "VMHU10V25", "team_id": self.team_id, **(view or {})}}
