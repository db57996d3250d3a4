"""The fake Slack's Web API methods: each answers as Slack documents it, from the fake's state,
with the state lock held (``fake_slack.FakeSlack`` serves them and keeps the state).

Blocks and views are checked twice, against our limits table (``securitybot.slack.limits``) and
by slack_sdk's own Block Kit models, so a wrong limit here cannot make the fake agree with it.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from securitybot.slack.limits import problems, view_problems

Json = dict[str, Any]


class SlackMethods:
    """The ``_api_<method>`` handlers, over the state ``FakeSlack.__init__`` sets up."""

    team_id: str
    enterprise_id: str | None
    org_install: bool
    workspaces: list[str]
    bot_user_id: str
    bot_id: str
    admin_token: str | None
    users: dict[str, Json]
    locales: dict[str, str]
    usergroups: dict[str, list[str]]
    usergroup_teams: dict[str, str]
    channels: dict[str, list[Json]]
    members: dict[str, set[str]]
    private: set[str]
    ephemeral: list[Json]
    views: dict[str, Json]
    session_resets: list[str]
    workspace_tokens: dict[str, str]
    user_tokens: dict[str, Json]
    _workspaces_seen: dict[str, Json]
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

    def _org_token(self, token: str) -> bool:
        return self.org_install and token.startswith("xoxb-")

    def _api_auth_test(self, token: str, params: dict[str, Any]) -> Json:
        installed = self.workspace_tokens.get(token)
        if installed is not None:  # a bot token issued through oauth.v2.access
            grant = self._workspaces_seen[installed]
            return {"ok": True, "url": "https://fake.slack.com/", "team": grant["team"]["name"],
                    "team_id": installed, "user": "securitybot", "user_id": grant["bot_user_id"],
                    "bot_id": f"B{installed}", "is_enterprise_install": False}  # fmt: skip
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
        group = str(params.get("usergroup", ""))
        users = self.usergroups.get(group)
        owner = self.usergroup_teams.get(group)
        if users is None or (
            owner is not None and self.workspace_tokens.get(token, self.team_id) != owner
        ):
            # A group of another workspace: the token's workspace has no such group.
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(users)}

    def _api_admin_users_session_reset(self, token: str, params: dict[str, Any]) -> Json:
        installed = self.user_tokens.get(token)  # a user token issued through OAuth
        user_token = token.startswith(("xoxp-", "xoxa-"))
        if installed is None and (
            not user_token or (self.admin_token is not None and token != self.admin_token)
        ):
            return {"ok": False, "error": "not_allowed_token_type"}
        if installed is not None and installed["enterprise"] is None:
            # A workspace outside Enterprise Grid: "feature_not_enabled: This method is not
            # available for this product level" (api.slack.com/methods/admin.users.session.reset,
            # Errors; "This API method can only be used on Enterprise Grid workspaces").
            return {"ok": False, "error": "feature_not_enabled"}
        if installed is not None and "admin.users:write" not in installed["scopes"]:
            return {"ok": False, "error": "missing_scope", "needed": "admin.users:write",
                    "provided": ",".join(installed["scopes"])}  # fmt: skip
        user = self.users.get(str(params.get("user_id", "")))
        team = user.get("team_id") if user is not None else None
        outside = (team != installed["team"] if installed is not None
                   else team in self._workspaces_seen)  # fmt: skip
        if user is None or outside:
            # Someone of a workspace outside the token's org: nobody the token can see.
            # Slack documents "user_not_found: Error fetching user" for this method
            # (api.slack.com/methods/admin.users.session.reset, Errors).
            return {"ok": False, "error": "user_not_found"}
        if user["is_primary_owner"]:
            return {"ok": False, "error": "cannot_reset_primary_owner"}
        if user["is_bot"]:
            return {"ok": False, "error": "cannot_reset_bot"}
        self.session_resets.append(user["id"])
        return {"ok": True}


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


def _teams_of(member: Json) -> list[str]:
    """The workspaces a member belongs to: on Grid, ``enterprise_user.teams``."""
    teams = (member.get("enterprise_user") or {}).get("teams")
    return list(teams) if teams else [str(member.get("team_id", ""))]
