"""Wiring for several workspaces without Grid (``slack.oauth``): the installation store on our
database, the per-workspace clients, Bolt's authorize and token revocation listeners, the OAuth
callback route. Nothing here runs unless ``slack.oauth`` is configured: the single
``slack.bot_token`` of before is untouched."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from securitybot.config import Settings
from securitybot.slack import oauth_flow
from securitybot.slack.gateway import SlackGateway
from securitybot.slack.installation_stores import AsyncStore
from securitybot.slack.installations import Installations, InstalledAuthorize
from securitybot.store import slack_installations
from securitybot.store.db import Database


@dataclass
class MultiWorkspace:
    store: AsyncStore
    installations: Installations
    flow: AsyncOAuthFlow
    home: AsyncWebClient

    def authorize(self, home_auth: Callable[[], Awaitable[dict[str, Any]]]) -> InstalledAuthorize:
        """``home_auth``: auth.test of slack.bot_token (slack/teams.py, HomeIdentity)."""
        return InstalledAuthorize(self.installations, self.home, home_auth)

    async def installed(self, team_id: str) -> bool:
        return await self.installations.bot(team_id) is not None

    def attach(self, gateway: SlackGateway, settings: Settings) -> None:
        """The gateway sends each call with its workspace's token; a routed channel is in its
        route's workspace."""
        gateway.installations = self.installations
        gateway.channel_teams = {
            route.channel: route.team_id
            for route in settings.escalation.routes
            if route.team_id and route.channel
        }

    def register(self, bolt: AsyncApp) -> None:
        # app_uninstalled, tokens_revoked: Bolt's listeners delete through our store, which
        # tells the cached clients (the workspace is no longer served from then on).
        bolt.enable_token_revocation_listeners()

    def routes(self) -> list[BaseRoute]:
        async def redirect(request: Request) -> Response:
            return await oauth_flow.callback(self.flow, request)

        return [Route(oauth_flow.REDIRECT_PATH, redirect, methods=["GET"])]


def build(settings: Settings, db: Database, home: AsyncWebClient) -> MultiWorkspace | None:
    oauth = settings.slack.oauth
    if not oauth.configured:
        return None
    assert oauth.client_id is not None and oauth.client_secret is not None
    store = AsyncStore(slack_installations.installation_store(oauth.client_id, db.engine))
    installations = Installations(
        store, api_url=settings.slack.api_url, client_id=oauth.client_id,
        client_secret=oauth.client_secret.get_secret_value(), refresh_before=oauth.refresh_before,
    )  # fmt: skip
    return MultiWorkspace(store, installations, oauth_flow.build_flow(settings, store), home)
