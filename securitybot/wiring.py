"""Which background workers and extra routes the service runs, given what is configured."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, timedelta
from typing import Any

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from starlette.routing import BaseRoute

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
    commands,
    directory_sync,
    grid,
    listeners,
    triage,
)
from securitybot.slack import storms as storm_buttons
from securitybot.slack.directory import DbDirectory
from securitybot.slack.gateway import SlackGateway
from securitybot.slack.triage import Responders
from securitybot.slack.wiring import check_slack_at_start, wire_slack
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


def wire_workers(
    runtime: Runtime, *, socket_mode: bool = False, verifier: Verifier | None = None
) -> list[BaseRoute]:
    s = runtime.settings
    routes: list[BaseRoute] = []
    gateway, org, bolt, receipt_middleware = wire_slack(runtime, routes)
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
