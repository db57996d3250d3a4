"""Several workspaces installed through OAuth in the fake Slack: install codes granted on
Slack's authorize page, oauth.v2.access (with token rotation), each issued bot token's
workspace (and user token's), uninstalls, and the scopes each token has.

Kept apart from the fake's Web API methods (``fake_slack.FakeSlack`` mixes this in and sets the
state below): the multi-workspace tests read the install flow in one place.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from typing import Any

from securitybot.demo.fake_slack_methods import Json
from securitybot.demo.slack_examples import OAUTH_V2_ACCESS

# The scopes a token has unless FakeSlack.token_scopes says otherwise: slack-manifest.yaml's
# bot list for bot tokens, its user list for user tokens (written out here, not imported from
# the product, so a scope the product forgets to ask for shows in the tests).
BOT_TOKEN_SCOPES = (
    "chat:write", "im:write", "im:history", "channels:history", "groups:history",
    "channels:read", "groups:read", "users:read", "users:read.email", "usergroups:read",
    "commands",
)  # fmt: skip
USER_TOKEN_SCOPES = ("admin.users:write", "auditlogs:read")


class SlackInstalls:
    """Installs through OAuth, over the state ``FakeSlack.__init__`` sets up."""

    team_id: str
    oauth_client: tuple[str, str] | None
    token_rotation: bool
    token_lifetime: int
    token_scopes: dict[str, list[str]]
    workspace_tokens: dict[str, str]
    user_tokens: dict[str, Json]
    _grants: dict[str, Json]
    _refresh_tokens: dict[str, str]
    _user_refresh_tokens: dict[str, str]
    _workspaces_seen: dict[str, Json]
    _revoked: set[str]
    _seq: int
    _lock: threading.Lock
    _next_id: Callable[[str], str]

    def grant_install(self, team_id: str, team_name: str, installer: str,
                      bot_user_id: str | None = None, org_wide: bool = False,
                      user_scopes: list[str] | None = None,
                      enterprise: str | None = None) -> str:  # fmt: skip
        """An admin of ``team_id`` approved the install on Slack's authorize page: the code
        Slack puts in the redirect back to the app. ``org_wide``: an Org Admin installed it
        for the whole Enterprise Grid org ``team_id`` (an E… id). ``user_scopes``: the user
        scopes the installer granted (authed_user.scope); ``enterprise``: the workspace is in
        that Grid org (another company's Grid, installed workspace by workspace)."""
        code = f"{team_id}.{self._next_id('code')}"
        with self._lock:
            self._grants[code] = {"team": {"id": team_id, "name": team_name},
                                  "installer": installer, "org_wide": org_wide,
                                  "bot_user_id": bot_user_id or f"UB{team_id}",
                                  "user_scopes": user_scopes,
                                  "enterprise": enterprise}  # fmt: skip
        return code

    def revoke_workspace(self, team_id: str) -> None:
        """The app was uninstalled from ``team_id``: its tokens stop working."""
        with self._lock:
            for token, team in list(self.workspace_tokens.items()):
                if team == team_id:
                    del self.workspace_tokens[token]
                    self._revoked.add(token)
            for token, grant in list(self.user_tokens.items()):
                if grant["team"] == team_id:
                    del self.user_tokens[token]

    def _workspace_of(self, token: str) -> str | None:
        """The workspace a bot token belongs to, once tokens were issued through OAuth."""
        if not self.workspace_tokens or "xoxb-" not in token:
            return None
        return self.workspace_tokens.get(token, self.team_id)

    def _oauth_v2_access(self, headers: dict[str, str], params: dict[str, Any]) -> Json:
        """oauth.v2.access: a code (or, with token rotation, a refresh token) for a bot token,
        answered as Slack documents it (slack_examples.OAUTH_V2_ACCESS) for its workspace."""
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
        if self.oauth_client is None or client_id != self.oauth_client[0]:
            return {"ok": False, "error": "invalid_client_id"}
        if secret != self.oauth_client[1]:
            return {"ok": False, "error": "bad_client_secret"}
        if params.get("grant_type") == "refresh_token":
            user_team = self._user_refresh_tokens.pop(str(params.get("refresh_token", "")), None)
            if user_team is not None:
                return self._issue_user(self._workspaces_seen[user_team])
            team_id = self._refresh_tokens.pop(str(params.get("refresh_token", "")), None)
            if team_id is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            grant = self._workspaces_seen[team_id]
        else:
            found = self._grants.pop(str(params.get("code", "")), None)
            if found is None:
                return {"ok": False, "error": "invalid_code"}
            grant = self._workspaces_seen[found["team"]["id"]] = found
        return self._issue(grant)

    def _issue(self, grant: Json) -> Json:
        team = grant["team"]
        reply = json.loads(json.dumps(OAUTH_V2_ACCESS))
        example = reply["team"]["id"] == team["id"]
        self._seq += 1
        token = reply["access_token"] if example else f"xoxb-{team['id']}-{self._seq:06d}"
        if self.token_rotation:
            token = f"xoxe.xoxb-1-{team['id']}-{self._seq:06d}"
            refresh = f"xoxe-1-{team['id']}-{self._seq:06d}"
            self._refresh_tokens[refresh] = team["id"]
            reply |= {"refresh_token": refresh, "expires_in": self.token_lifetime}
        # Only what names the workspace differs from the documented example: the example's
        # own workspace gets the example verbatim. A workspace outside Grid has no enterprise.
        if not example:
            reply |= {"team": dict(team), "enterprise": None,
                      "bot_user_id": grant["bot_user_id"]}  # fmt: skip
            reply["authed_user"] |= {"id": grant["installer"],
                                     "access_token": f"xoxp-{team['id']}-user"}  # fmt: skip
            if grant.get("user_scopes") is not None:
                reply["authed_user"]["scope"] = ",".join(grant["user_scopes"])
            if grant.get("enterprise"):
                org = grant["enterprise"]
                reply["enterprise"] = {"id": org, "name": f"Org {org}"}
            if self.token_rotation:
                reply["authed_user"] |= self._user_pair(team["id"])
            self.user_tokens[reply["authed_user"]["access_token"]] = {
                "team": team["id"], "enterprise": grant.get("enterprise"),
                "scopes": reply["authed_user"]["scope"].split(","),
            }  # fmt: skip
            grant["user_scope"] = reply["authed_user"]["scope"]
        if grant.get("org_wide"):
            # An org-wide install names the org, not a workspace: team null, the org in
            # enterprise, is_enterprise_install true (api.slack.com/enterprise/org-wide-apps).
            reply |= {"team": None, "enterprise": dict(team), "is_enterprise_install": True}
        reply["access_token"] = token
        self.workspace_tokens[token] = team["id"]
        grant["bot_user_id"] = reply["bot_user_id"]
        return dict(reply)

    def _user_pair(self, team_id: str) -> Json:
        """With token rotation, a user token expires too and comes with its refresh token."""
        self._seq += 1
        refresh = f"xoxe-1-u-{team_id}-{self._seq:06d}"
        self._user_refresh_tokens[refresh] = team_id
        return {"access_token": f"xoxe.xoxp-1-{team_id}-{self._seq:06d}",
                "refresh_token": refresh, "expires_in": self.token_lifetime}  # fmt: skip

    def _issue_user(self, grant: Json) -> Json:
        """A user token's refresh: Slack answers token_type "user" with the new pair
        (docs.slack.dev/authentication/using-token-rotation)."""
        team = grant["team"]
        pair = self._user_pair(team["id"])
        self.user_tokens[pair["access_token"]] = {
            "team": team["id"], "enterprise": grant.get("enterprise"),
            "scopes": str(grant.get("user_scope", "")).split(","),
        }  # fmt: skip
        org = grant.get("enterprise")
        return {"ok": True, "token_type": "user", "scope": grant.get("user_scope", ""),
                "team": dict(team), "enterprise": {"id": org, "name": f"Org {org}"} if org
                else None, **pair}  # fmt: skip

    def _scope_header(self, token: str) -> dict[str, str]:
        """Slack names the token's scopes in ``x-oauth-scopes`` on every Web API answer."""
        default = BOT_TOKEN_SCOPES if token.startswith("xoxb-") else USER_TOKEN_SCOPES
        scopes = self.token_scopes.get(token, list(default))
        return {"x-oauth-scopes": ",".join(scopes)}
