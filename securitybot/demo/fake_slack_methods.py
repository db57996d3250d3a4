"""The fake Slack's Web API methods for conversations, messages and views: each answers as
Slack documents it, from the fake's state, with the state lock held (``fake_slack.FakeSlack``
serves them and keeps the state). The people's methods are in ``fake_slack_people``; blocks and
views are checked by ``fake_slack_blockkit``.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from securitybot.demo.fake_slack_blockkit import _refused_blocks, _refused_view

Json = dict[str, Any]


class SlackMethods:
    """The ``_api_<method>`` handlers, over the state ``FakeSlack.__init__`` sets up."""

    team_id: str
    bot_user_id: str
    bot_id: str
    users: dict[str, Json]
    channels: dict[str, list[Json]]
    members: dict[str, set[str]]
    private: set[str]
    ephemeral: list[Json]
    views: dict[str, Json]
    _last_ts_us: int
    _seq: int

    def _next_ts(self) -> str:
        # Real Slack timestamps are wall-clock microseconds, unique per channel.
        now_us = int(time.time() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq:08d}"

    # ---- Web API methods: each runs with the state lock held -----------------------------

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
