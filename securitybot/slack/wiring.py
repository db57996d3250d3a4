"""The Slack side of the service: the Web API clients and gateway, Bolt with its listeners'
first guards (the team guard, OAuth workspaces, receipts), the signed ``/slack/events`` route,
and the check at start of what the bot can see. ``securitybot.wiring`` calls it."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from securitybot.runtime import Runtime
from securitybot.slack import channels, grid, multi_workspace, receipts, signed, teams, tokens
from securitybot.slack.gateway import SlackGateway, retry_handlers
from securitybot.slack.tiers import Limits

# Logged under the module these came from, so the log output does not change.
logger = logging.getLogger("securitybot.wiring")

SlackParts = tuple[
    SlackGateway | None, grid.Workspaces | None, AsyncApp | None, receipts.ReceiptMiddleware | None
]


def wire_slack(runtime: Runtime, routes: list[BaseRoute]) -> SlackParts:
    """The gateway, the org's workspaces, Bolt and the receipts middleware (all None when Slack
    is not configured); adds the Slack routes to ``routes``."""
    s = runtime.settings
    if not s.slack.configured:
        return None, None, None, None
    assert s.slack.bot_token is not None and s.slack.signing_secret is not None
    client = AsyncWebClient(
        token=s.slack.bot_token.get_secret_value(), base_url=s.slack.api_url,
        retry_handlers=retry_handlers(),
    )  # fmt: skip
    admin = (
        AsyncWebClient(token=s.slack.admin_token.get_secret_value(), base_url=s.slack.api_url)
        if s.slack.admin_token
        else None
    )
    limits = Limits(per_minute=dict(s.slack.rate_limits), spare=1.0)
    gateway = SlackGateway(client, admin_client=admin, cache_ttl=s.slack.user_cache_ttl,
                           limits=limits)  # fmt: skip
    # An org-wide install's workspaces, kept current (team_access_* events, re-reads).
    org = grid.Workspaces(gateway)
    # slack.oauth: other workspaces installed through OAuth, each served with its own bot
    # token (Bolt's authorize gives listeners theirs); None: slack.bot_token alone.
    multi = multi_workspace.build(s, runtime.db, client)
    # slack.bot_token's own team: what the team guard serves (with slack.team_ids), and
    # the gateway's home workspace (beside the installed ones).
    served = teams.ServedTeams.from_config(s.slack.team_ids, s.slack.enterprise_ids)
    home = teams.HomeIdentity(client, served)
    home.learned.append(functools.partial(_home_team, gateway))
    org.home = home.auth  # the org's workspaces, when the read at start failed
    oauth_options: dict[str, Any] = {}
    if multi is not None:
        multi.attach(gateway, s)
        oauth_options = {"authorize": multi.authorize(home.auth),
                         "installation_store": multi.store}  # fmt: skip
    bolt = AsyncApp(
        # With authorize, Bolt takes each request's token from it, not from its client.
        client=client
        if multi is None
        else AsyncWebClient(base_url=s.slack.api_url, retry_handlers=retry_handlers()),
        **oauth_options,
        signing_secret=s.slack.signing_secret.get_secret_value(),
        # Answer Slack as soon as a listener acks and do the work after, so Slack (3 s)
        # rarely retries; the receipts middleware makes the retries it does send harmless.
        process_before_response=False,
        # Bolt would drop the deletion of the bot's own DM question as a "self event";
        # the receipts middleware and the listeners skip the bot's own messages instead.
        ignoring_self_events_enabled=False,
    )
    # First: nothing from a workspace we do not serve is recorded or handled.
    teams.register(bolt, served, runtime.db,
                   installed=multi.installed if multi is not None else None,
                   home=home)  # fmt: skip
    if multi is not None:
        multi.register(bolt)
        routes.extend(multi.routes())
    runtime.slack_oauth = multi
    runtime.slack_home = home
    receipt_middleware = receipts.register(bolt, runtime.db)
    handler = AsyncSlackRequestHandler(bolt)
    guard = signed.SlackSignatureGuard(
        s.slack.signing_secret.get_secret_value(), s.slack.max_body_bytes
    )

    async def slack_events(request: Request) -> Response:
        try:
            body = await guard.verified_body(request)
        except signed.Refused as exc:
            return exc.response()
        return await handler.handle(signed.with_body(request, body))

    routes.append(Route("/slack/events", slack_events, methods=["POST"]))
    return gateway, org, bolt, receipt_middleware


def _home_team(gateway: SlackGateway, auth: Mapping[str, Any]) -> None:
    if team := auth.get("team_id"):
        gateway.home_team = str(team)


# auth.test and a conversations.info per routed channel: a few seconds at most on a sound Slack.
SLACK_CHECK_TIMEOUT = 20.0


async def _elsewhere(gateway: SlackGateway) -> dict[str, AsyncWebClient]:
    """Routed channels of workspaces installed through OAuth, with those workspaces' clients
    (a channel of a workspace not installed yet is asked with slack.bot_token, as before)."""
    if gateway.installations is None:
        return {}
    found = {ch: await gateway.installations.client(t) for ch, t in gateway.channel_teams.items()}
    return {ch: client for ch, client in found.items() if client is not None}


async def check_slack_at_start(
    runtime: Runtime, gateway: SlackGateway, org: grid.Workspaces | None = None
) -> None:
    """Learn the bot's team (the team guard's list) and say in one line whether the bot is a
    member of the security channel and every routed channel."""
    try:
        found = await asyncio.wait_for(
            channels.check_slack(gateway.client, runtime.settings, await _elsewhere(gateway)),
            SLACK_CHECK_TIMEOUT,
        )
    except Exception as exc:  # one line; the team guard and the grid re-read ask auth.test later
        logger.warning("Slack: cannot check the bot at start: %s", channels.describe(exc))
        return
    if runtime.slack_home is not None:  # the team guard's list, the gateway's home team
        runtime.slack_home.learn(found.auth)
    for channel, error in found.missing.items():
        gateway.channel_health.failed(channel, error)
    (logger.warning if found.missing else logger.info)("%s", found.line())
    try:
        org = org or grid.Workspaces(gateway)
        await asyncio.wait_for(org.learn(found.auth), SLACK_CHECK_TIMEOUT)
    except Exception as exc:
        logger.warning("Slack: cannot list the org's workspaces: %s", channels.describe(exc))
    try:
        await asyncio.wait_for(
            tokens.check_tokens(runtime.settings, gateway.client, gateway.admin_client),
            SLACK_CHECK_TIMEOUT,
        )
    except Exception as exc:
        logger.warning("Slack: cannot check the tokens' scopes: %s", channels.describe(exc))
