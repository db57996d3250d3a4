"""Which workspace a Slack call goes to, and with whose token: its channel's or person's
workspace, among an org-wide install's workspaces or those installed through OAuth.

Kept apart from the gateway (slack/gateway.py): with several workspaces served, every call
and every person's reachability depends on this choice, so it reads in one place.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from securitybot.slack.api_types import SlackUser
from securitybot.slack.installations import Installations


class WorkspaceRouting:
    """Mixed into SlackGateway, whose ``__init__`` sets the state below."""

    client: AsyncWebClient
    workspaces: frozenset[str] | None
    installations: Installations | None
    channel_teams: dict[str, str]
    home_team: str | None
    _dm_owner: dict[str, str]
    _cache: dict[str, tuple[float, SlackUser | None]]

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

    def _workspace_of(self, kw: dict[str, Any], via_team: str | None) -> str | None:
        """The workspace a call goes to: the one it names (``team_id``), or whose token it
        is sent with (``via_team``; "" is slack.bot_token's own), or whose channel or person
        it is about; None for the app's own or unknown."""
        if via_team == "":
            return kw.get("team_id") or None
        return kw.get("team_id") or via_team or self._team_of(kw)

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
