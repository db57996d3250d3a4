"""The fake Slack's people: auth.test, users.info/list/lookupByEmail, auth.teams.list,
usergroups.users.list and admin.users.session.reset, each as Slack documents it, with the state
lock held (``fake_slack.FakeSlack`` mixes this in and keeps the state)."""

from __future__ import annotations

import base64
import time
from typing import Any

from securitybot.demo.fake_slack_methods import Json


class SlackPeople:
    """The directory's ``_api_<method>`` handlers, over the state ``FakeSlack.__init__`` sets up."""

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
    session_resets: list[str]
    workspace_tokens: dict[str, str]
    user_tokens: dict[str, Json]
    _workspaces_seen: dict[str, Json]

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


def _teams_of(member: Json) -> list[str]:
    """The workspaces a member belongs to: on Grid, ``enterprise_user.teams``."""
    teams = (member.get("enterprise_user") or {}).get("teams")
    return list(teams) if teams else [str(member.get("team_id", ""))]
