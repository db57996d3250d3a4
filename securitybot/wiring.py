"""Which background workers and extra routes the service runs, given what is configured."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, timedelta
from typing import Any

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from securitybot import metrics
from securitybot.aer.wiring import wire_aer
from securitybot.api import storms as storms_api
from securitybot.domain.business_hours import parse_hhmm
from securitybot.flows import suppression_summary
from securitybot.flows.conversation import HELD_EFFECTS, UNORDERED_EFFECTS, ConversationHandlers
from securitybot.flows.conversation_batch import BatchConversation
from securitybot.flows.locales import Locales
from securitybot.flows.slack_wait import wake_jobs_waiting_for_slack
from securitybot.flows.sweep import sweep_everything
from securitybot.flows.webhooks import WebhookSender
from securitybot.i18n import translator
from securitybot.outbox.dispatcher import Dispatcher
from securitybot.paging.hooks import SESSION_KEY as PAGING_RULES
from securitybot.paging.sweep import sweep_paging
from securitybot.paging.wiring import wire_paging
from securitybot.runtime import Runtime
from securitybot.slack import (
    app_home_listeners,
    channels,
    commands,
    directory_sync,
    grid,
    listeners,
    multi_workspace,
    receipts,
    signed,
    teams,
    tokens,
    triage,
)
from securitybot.slack import storms as storm_buttons
from securitybot.slack.directory import DbDirectory
from securitybot.slack.gateway import SlackGateway, retry_handlers
from securitybot.slack.tiers import Limits
from securitybot.slack.triage import Responders
from securitybot.storms.posts import StormPosts
from securitybot.verify.base import PROVIDER_LABELS, Verifier
from securitybot.verify.duo import DuoVerifier, UnconfiguredVerifier

logger = logging.getLogger(__name__)


def build_verifier(runtime: Runtime) -> Verifier:
    s = runtime.settings
    if s.verify.provider == "okta":
        from securitybot.verify.okta import OktaVerifier

        return OktaVerifier(s.okta) if s.okta.configured else UnconfiguredVerifier("Okta")
    if s.duo.configured:
        return DuoVerifier(s.duo)
    return UnconfiguredVerifier()


# auth.test and a conversations.info per routed channel: a few seconds at most on a sound Slack.
SLACK_CHECK_TIMEOUT = 20.0


async def _elsewhere(gateway: SlackGateway) -> dict[str, AsyncWebClient]:
    """Routed channels of workspaces installed through OAuth, with those workspaces' clients
    (a channel of a workspace not installed yet is asked with slack.bot_token, as before)."""
    if gateway.installations is None:
        return {}
    found = {ch: await gateway.installations.client(t) for ch, t in gateway.channel_teams.items()}
    return {ch: client for ch, client in found.items() if client is not None}


def _home_team(gateway: SlackGateway, auth: Mapping[str, Any]) -> None:
    if team := auth.get("team_id"):
        gateway.home_team = str(team)


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


def wire_workers(
    runtime: Runtime, *, socket_mode: bool = False, verifier: Verifier | None = None
) -> list[BaseRoute]:
    s = runtime.settings
    routes: list[BaseRoute] = []
    gateway: SlackGateway | None = None
    org: grid.Workspaces | None = None
    bolt: AsyncApp | None = None
    receipt_middleware: receipts.ReceiptMiddleware | None = None
    if s.slack.configured:
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
    runtime.slack = gateway
    runtime.bolt = bolt

    verifier = verifier or build_verifier(runtime)
    locales = Locales(s.i18n, runtime.db, gateway)  # each person's language (docs/i18n.md)
    runtime.locales = locales  # the API's PUT /api/v1/people/locale makes it forget a person
    handlers = ConversationHandlers(
        db=runtime.db,
        settings=s,
        kinds=runtime.kinds,
        slack=gateway,
        verifier=verifier,
        wake=runtime.notify_new_work,
        locales=locales,
    )
    if bolt is not None and gateway is not None:
        listeners.register(bolt, runtime.db, runtime.notify_new_work,
                           PROVIDER_LABELS.get(verifier.name, "Duo"),
                           locales.for_user)  # fmt: skip
        responders = Responders(s.escalation, gateway)
        runtime.responders = responders  # the API's requested_by check counts user groups too
        triage.register(bolt, runtime.db, runtime.notify_new_work, responders,
                        translator(s.i18n.team_locale))  # fmt: skip
        app_home_listeners.register(bolt, runtime.db, responders, locales.for_user,
                                    translator(s.i18n.team_locale))  # fmt: skip
        directory_sync.register(bolt, gateway)
        if org is not None:
            grid.register(bolt, org)
        commands.register(
            bolt,
            runtime.db,
            responders,
            max_exemption=timedelta(seconds=s.escalation.max_exemption),
            max_suppression=timedelta(seconds=s.escalation.max_suppression),
            kinds=runtime.kinds,
            policy=s.policy,
            wake=runtime.notify_new_work,
            locale_of=locales.for_user,
            locale_set=locales.forget,
            team_t=translator(s.i18n.team_locale),
        )
    runtime.handlers.update(handlers.handlers())
    paging = wire_paging(runtime, routes, gateway)
    runtime.handlers["outbound_webhook"] = WebhookSender(list(s.webhooks.outbound))
    summary_at = parse_hhmm(s.escalation.suppression_summary_at)
    runtime.handlers[suppression_summary.EFFECT] = suppression_summary.SummaryHandler(
        runtime.db, gateway, s.slack.security_channel, translator(s.i18n.team_locale)
    )
    batch = BatchConversation(handlers)
    dispatcher = Dispatcher(
        runtime.db, runtime.handlers, lease=s.scheduler.outbox_lease,
        unordered=UNORDERED_EFFECTS, held=HELD_EFFECTS, batch_handlers=batch.handlers(),
    )  # fmt: skip
    handlers.handover = dispatcher  # a push's poll starts from the push, not from a claim
    runtime.on_new_work(dispatcher.notify)
    runtime.on_drain.append(dispatcher.drain)
    batch.handover = dispatcher
    scheduler = AsyncIOScheduler()
    socket_handler = None
    slack_check: list[asyncio.Task[Any]] = []
    paging_rules = runtime.db.session_info[PAGING_RULES]

    def sweep_all() -> int:
        esc = s.escalation
        changed = sweep_everything(runtime.db, claim_timeout=esc.claim_timeout,
                                   tiers=len(esc.tiers))  # fmt: skip
        try:
            changed += sweep_paging(runtime.db, paging_rules)
        except Exception:
            logger.exception("paging sweep failed; it runs again next interval")
        return changed

    async def sweep() -> None:
        started = time.perf_counter()
        with metrics.SWEEP_DURATION.time():
            n = await asyncio.to_thread(sweep_all)
        if n:
            logger.info(
                "sweep changed %s alerts in %.1f ms", n, (time.perf_counter() - started) * 1e3
            )
            runtime.notify_new_work()

    async def daily_summary() -> None:
        due = suppression_summary.due(summary_at)
        await asyncio.to_thread(suppression_summary.schedule, runtime.db, due)
        runtime.notify_new_work()

    async def retention_purge() -> None:
        from securitybot.privacy.job import run_daily

        try:
            await asyncio.to_thread(run_daily, runtime.db, s.retention)
        except Exception:
            logger.exception("retention purge failed; it runs again tomorrow")

    async def start() -> None:
        nonlocal socket_handler
        if gateway is not None:
            # slack_sdk opens a new aiohttp session (connector, DNS cache) per call unless it
            # is given one; sharing one per process saves most of the CPU of a Slack call.
            http = aiohttp.ClientSession()
            for web in (gateway.client, gateway.admin_client):
                if web is not None:
                    web.session = http
            if gateway.installations is not None:
                gateway.installations.session = http

            # In the background: a slow or unreachable Slack must not hold up start-up. Then
            # the whole directory (users.list; after the check, which learns an org-wide
            # install's workspaces): until it is read, lookups use users.lookupByEmail.
            async def check_then_sync(gateway: SlackGateway) -> None:
                await check_slack_at_start(runtime, gateway, org)
                await directory_sync.sync(gateway)

            slack_check.append(asyncio.create_task(check_then_sync(gateway)))
        if not s.scheduler.enabled:
            return
        # Handlers do their database work in threads; the default pool (cores + 4) is far too
        # small for dozens of concurrent conversations waiting on Slack and Duo.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=32, thread_name_prefix="securitybot")
        )
        if gateway is not None:
            # Alerts stored while Slack was not configured: ask their people now, not at the
            # jobs' next check.
            woken = await asyncio.to_thread(wake_jobs_waiting_for_slack, runtime.db)
            if woken:
                logger.info("Slack is configured: starting %s waiting conversations", woken)
        await dispatcher.start()
        scheduler.add_job(
            sweep, "interval", seconds=s.scheduler.sweep_interval, id="deadline_sweep",
            max_instances=1, coalesce=True, misfire_grace_time=None,
        )  # fmt: skip
        scheduler.add_job(
            daily_summary, "cron", hour=summary_at.hour, minute=summary_at.minute, timezone=UTC,
            id="suppression_summary", coalesce=True, misfire_grace_time=3600,
        )  # fmt: skip
        if s.retention.enabled:
            purge_at = parse_hhmm(s.retention.run_at)
            scheduler.add_job(
                retention_purge, "cron", hour=purge_at.hour, minute=purge_at.minute,
                timezone=UTC, id="retention_purge", max_instances=1, coalesce=True,
                misfire_grace_time=6 * 3600,
            )  # fmt: skip
        if gateway is not None:
            scheduler.add_job(
                directory_sync.sync, "interval", seconds=directory_sync.EVERY, args=[gateway],
                id="slack_directory_sync", max_instances=1, coalesce=True,
            )  # fmt: skip
        if org is not None:
            scheduler.add_job(
                org.periodic, "interval", seconds=grid.REFRESH, id="slack_workspaces",
                max_instances=1, coalesce=True,
            )  # fmt: skip
        scheduler.start()
        if socket_mode:
            if bolt is None or s.slack.app_token is None:
                raise RuntimeError(
                    "--socket-mode needs slack.bot_token, signing_secret and app_token"
                )
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            socket_handler = AsyncSocketModeHandler(bolt, s.slack.app_token.get_secret_value())
            await socket_handler.connect_async()  # type: ignore[no-untyped-call]

    async def stop() -> None:
        for task in slack_check:
            task.cancel()
        if scheduler.running:
            scheduler.shutdown(wait=False)
        verifier.close()  # release Duo long-polls first, so the dispatcher need not wait
        await dispatcher.stop(timeout=s.server.shutdown_grace / 2)
        if paging is not None:
            await paging.close()
        if gateway is not None and gateway.client.session is not None:
            await gateway.client.session.close()
        if socket_handler is not None:
            await socket_handler.close_async()  # type: ignore[no-untyped-call]
        if receipt_middleware is not None:
            receipt_middleware.close()

    if gateway is not None:
        # People and DM channels Slack already told us about (survives restarts; issue #15).
        directory = DbDirectory(runtime.db)
        runtime.on_start.append(functools.partial(gateway.attach, directory))
        runtime.on_stop.append(directory.close)
    runtime.on_start.append(start)
    runtime.on_stop.append(stop)
    runtime.dispatcher = dispatcher
    wire_aer(runtime, routes)  # Anomaly Event Response: routes, handlers, jobs
    wire_storms(runtime, routes)
    return routes


def wire_storms(runtime: Runtime, routes: list[BaseRoute]) -> None:
    """The storm guard's API, message handlers and buttons (the guard itself sits in the DM
    path, configured through ``Database.session_info``)."""
    routes.extend(storms_api.routes)
    runtime.handlers.update(StormPosts(runtime.db, runtime.settings, runtime.slack).handlers())
    if runtime.bolt is not None and runtime.responders is not None:
        storm_buttons.register(
            runtime.bolt,
            runtime.db,
            runtime.notify_new_work,
            runtime.responders,
            translator(runtime.settings.i18n.team_locale),
        )
