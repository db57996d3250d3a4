"""Installing the app in another workspace: Slack's OAuth flow, run by Bolt's ``AsyncOAuthFlow``.

Bolt's flow does what Slack documents (docs.slack.dev/authentication/installing-with-oauth):
"Add to Slack" issues a one-time state (kept in the state store and in a browser cookie) and
redirects to Slack's authorize page with our scopes; Slack sends the admin back to the redirect
URL with a code, which ``oauth.v2.access`` exchanges for the workspace's bot token (and, with
token rotation on, a refresh token); the installation is saved in slack_sdk's installation
store. We use Bolt's flow, not Bolt's routes: starting an install sits behind the dashboard's
sign-in (admins, dashboard/slack_install_views.py), and the callback only accepts the state it
issued to that browser. Bolt's own install page and its "Thank you" page are not used: the
callback leads back to the dashboard's list of installed workspaces.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from slack_bolt import BoltResponse
from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.oauth.async_callback_options import (
    AsyncCallbackOptions,
    AsyncFailureArgs,
    AsyncSuccessArgs,
)
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response

from securitybot.config import Settings
from securitybot.slack.installation_stores import AsyncStateStore, AsyncStore
from securitybot.slack.installations import TOKEN_EXCHANGE_LOG
from securitybot.slack.tokens import BOT_SCOPES
from securitybot.store import slack_installations

logger = logging.getLogger(__name__)

INSTALL_PATH = "/dashboard/slack/install/start"
REDIRECT_PATH = "/slack/oauth_redirect"
INSTALLED_PAGE = "/dashboard/slack/install"


async def _success(args: AsyncSuccessArgs) -> BoltResponse:
    found = args.installation
    if found.is_enterprise_install or not found.team_id:
        # An org-wide install is Enterprise Grid's single bot token (slack.bot_token,
        # docs/deploy.md "Enterprise Grid"), not a workspace of this list: not kept.
        await args.settings.installation_store.async_delete_all(
            enterprise_id=found.enterprise_id, team_id=found.team_id
        )
        return await _failure(AsyncFailureArgs(
            request=args.request, reason="org_wide_install_use_slack_bot_token", error=None,
            suggested_status_code=400, settings=args.settings, default=args.default,
        ))  # fmt: skip
    logger.info("Slack: installed in workspace %s (%s) by %s", found.team_id, found.team_name,
                found.user_id)  # fmt: skip
    return BoltResponse(
        status=303, body="",
        headers={"Location": f"{INSTALLED_PAGE}?installed={found.team_id or ''}",
                 "Set-Cookie": args.settings.state_utils.build_set_cookie_for_deletion()},
    )  # fmt: skip


async def _failure(args: AsyncFailureArgs) -> BoltResponse:
    # Bolt's reason (invalid_browser, invalid_state, invalid_code, storage_error, the error
    # Slack sent back): never the code or a token.
    # The reason may be Slack's ?error=, which anyone can put in the callback's URL: quoted.
    reason = quote(str(args.reason)[:64], safe="")
    logger.warning("Slack: an install did not complete: %s", reason)
    return BoltResponse(
        status=303, body="",
        headers={"Location": f"{INSTALLED_PAGE}?failed={reason}",
                 "Set-Cookie": args.settings.state_utils.build_set_cookie_for_deletion()},
    )  # fmt: skip


def build_flow(settings: Settings, store: AsyncStore) -> AsyncOAuthFlow:
    """Bolt's OAuth flow over our stores; ``slack.oauth`` must be configured."""
    oauth = settings.slack.oauth
    assert oauth.client_id and oauth.client_secret and oauth.redirect_url
    states = AsyncStateStore(slack_installations.state_store(store.store.engine))
    return AsyncOAuthFlow(
        client=AsyncWebClient(base_url=settings.slack.api_url, logger=TOKEN_EXCHANGE_LOG),
        settings=AsyncOAuthSettings(
            client_id=oauth.client_id,
            client_secret=oauth.client_secret.get_secret_value(),
            scopes=list(oauth.scopes or BOT_SCOPES),
            user_scopes=list(oauth.user_scopes),
            redirect_uri=oauth.redirect_url,
            install_path=INSTALL_PATH,
            redirect_uri_path=REDIRECT_PATH,
            install_page_rendering_enabled=False,
            authorization_url=oauth.authorize_url,
            installation_store=store,
            installation_store_bot_only=True,
            state_store=states,
            state_expiration_seconds=slack_installations.STATE_EXPIRES,
            callback_options=AsyncCallbackOptions(success=_success, failure=_failure),
        ),
    )


async def start(flow: AsyncOAuthFlow, request: Request) -> Response:
    """Redirect to Slack's authorize page with a fresh state (and its browser cookie)."""
    return to_starlette_response(
        await flow.handle_installation(to_async_bolt_request(request, b""))
    )


async def callback(flow: AsyncOAuthFlow, request: Request) -> Response:
    """Slack's redirect back: check the state, exchange the code, store the installation."""
    answer = await flow.handle_callback(to_async_bolt_request(request, b""))
    return to_starlette_response(answer)
