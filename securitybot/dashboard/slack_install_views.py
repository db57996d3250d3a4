"""The dashboard's Slack install page (admins): the workspaces installed through OAuth, and
"Add to Slack", which starts Slack's OAuth flow (slack/oauth_flow.py) with a state bound to
this browser. The callback (``/slack/oauth_redirect``) brings the admin back here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response as StarletteResponse
from starlette.routing import BaseRoute, Route

from securitybot.dashboard.auth import DashboardSession
from securitybot.dashboard.pages import Pages
from securitybot.dashboard.roles import Role
from securitybot.slack import oauth_flow


def routes(dash: Pages) -> list[BaseRoute]:
    async def page(request: Request, session: DashboardSession) -> StarletteResponse:
        multi = dash._rt(request).slack_oauth
        bots: list[dict[str, Any]] = []
        if multi is not None:
            for team in await multi.installations.teams():
                bot = await multi.installations.bot(team)
                if bot is None:
                    continue
                expires = bot.bot_token_expires_at
                bots.append({
                    "team_id": bot.team_id, "team_name": bot.team_name,
                    "bot_user_id": bot.bot_user_id, "installed_at": bot.installed_at,
                    "expires": datetime.fromtimestamp(expires, UTC).isoformat(timespec="minutes")
                    if expires else None,
                })  # fmt: skip
        # Only a workspace id or Bolt's reason word is shown back, never anything longer.
        installed = request.query_params.get("installed", "")[:32]
        failed = request.query_params.get("failed", "")[:64]
        return dash._page(request, "slack_install.html", session=session, bots=bots,
                          configured=multi is not None, installed=installed,
                          failed=failed)  # fmt: skip

    async def start(request: Request, session: DashboardSession) -> StarletteResponse:
        rt = dash._rt(request)
        if rt.slack_oauth is None:
            return dash._finish(StarletteResponse("slack.oauth is not configured", 404))
        dash._audit(rt, session.username, "slack.install_started")
        return dash._finish(await oauth_flow.start(rt.slack_oauth.flow, request))

    return [
        Route("/dashboard/slack/install", dash.requires(Role.admin, page), methods=["GET"]),
        Route(oauth_flow.INSTALL_PATH, dash.requires(Role.admin, start), methods=["GET"]),
    ]
