"""Plugging AER into the service: routes, outbox handlers, start-up state, scheduled jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from starlette.routing import BaseRoute

from securitybot.aer.held_posts import HeldPosts
from securitybot.aer.listen import VersionListener
from securitybot.aer.natsconn import warn_without_credentials
from securitybot.aer.poller import AuditLogPoller
from securitybot.aer.respond import Responder
from securitybot.aer.service import AerService
from securitybot.aer.stream import StreamPublisher
from securitybot.aer.torlist import TorListError, update_tor_list
from securitybot.api import audit as audit_api
from securitybot.api import held_resets as held_api
from securitybot.api.events import event_routes
from securitybot.i18n import translator
from securitybot.runtime import Runtime
from securitybot.slack import held_resets
from securitybot.slack.tokens import audit_logs_token

logger = logging.getLogger(__name__)
PROFILE_FLUSH_SECONDS = 60.0


def wire_aer(runtime: Runtime, routes: list[BaseRoute]) -> AerService | None:
    """Add AER's routes to ``routes`` and its handlers to ``runtime.handlers``."""
    s = runtime.settings
    routes.extend(audit_api.routes)
    # Held resets can outlive a change of configuration: they stay listed and decidable.
    routes.extend(held_api.routes)
    runtime.handlers.update(HeldPosts(runtime.db, s, runtime.slack).handlers())
    if runtime.bolt is not None and runtime.responders is not None:
        held_resets.register(runtime.bolt, runtime.db, runtime.notify_new_work, runtime.responders,
                             translator(s.i18n.team_locale))  # fmt: skip
    if not s.aer.enabled:
        routes.extend(event_routes(None))
        return None
    service = AerService(s.aer, runtime.db)
    service.wake = runtime.notify_new_work
    # Each person's language as for their alert DMs (flows/locales.py, set up by wiring.py).
    locale_of = runtime.locales.for_user if runtime.locales is not None else None
    responder = Responder(runtime.db, s, runtime.kinds, runtime.slack, runtime.notify_new_work,
                          locale_of)  # fmt: skip
    runtime.handlers.update(responder.handlers())
    publisher = None
    if s.aer.stream is not None:
        warn_without_credentials(s.aer.stream, "serve")
        publisher = StreamPublisher(s.aer.stream)
    routes.extend(event_routes(service, publisher))
    if publisher is not None:
        runtime.readiness["nats"] = publisher.ready
    # The Audit Logs API takes the org admin's user token unless it has a token of its own.
    audit_token = audit_logs_token(s)
    audit_cfg = s.aer.audit_logs.model_copy(update={"token": audit_token})
    poller = AuditLogPoller(service, audit_cfg) if audit_token else None
    scheduler = AsyncIOScheduler()

    async def poll() -> None:
        assert poller is not None
        try:
            await poller.poll_once()
        except Exception:  # the next run tries again; one bad poll must not stop the job
            logger.exception("AER audit-log poll failed")

    async def refresh() -> None:
        r = await asyncio.to_thread(service.refresh_baselines)
        logger.info("AER refreshed %s baselines, %s changed", r.learned, r.changed)

    async def tor_list() -> None:
        a = s.aer
        try:
            r = await asyncio.to_thread(
                update_tor_list, runtime.db, a.tor_list_url, min_entries=a.tor_list_min_entries,
                max_entries=a.tor_list_max_entries,
            )  # fmt: skip
        except TorListError as exc:  # the previous list stays in force; try again next time
            logger.warning("AER Tor list not updated: %s", exc)
            return
        logger.info("AER stored %s Tor exits (version %s)", r.entries, r.version)
        wakeup.set()

    wakeup = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    listener: list[VersionListener] = []

    async def sync_loop() -> None:
        # Always on (not a scheduler job): another process's refresh must reach this one.
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), s.aer.sync_interval)
            wakeup.clear()
            try:
                await asyncio.to_thread(service.sync)
            except Exception:  # the next round tries again
                logger.exception("AER shared-state sync failed")

    async def flush() -> None:
        await asyncio.to_thread(service.flush_profiles)

    async def start() -> None:
        changed = await asyncio.to_thread(service.audit_settings_changes)
        if changed:
            logger.info("AER settings changed for %s (audited)", ", ".join(changed))
        await asyncio.to_thread(service.load_state)
        await asyncio.to_thread(service.refresh_baselines)
        if s.aer.sync_interval > 0:
            if runtime.db.is_postgres:
                loop = asyncio.get_running_loop()

                def on_change(_name: str) -> None:
                    loop.call_soon_threadsafe(wakeup.set)

                listener.append(VersionListener(runtime.db.engine.url, on_change))
                listener[0].start()
            tasks.append(asyncio.create_task(sync_loop(), name="aer-sync"))
        if not s.scheduler.enabled:
            return
        opts = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        interval = s.aer.baseline_refresh_interval
        scheduler.add_job(refresh, "interval", seconds=interval, id="aer_baselines", **opts)
        scheduler.add_job(
            flush, "interval", seconds=PROFILE_FLUSH_SECONDS, id="aer_profiles", **opts
        )
        if s.aer.tor_list_refresh_interval > 0:
            every = s.aer.tor_list_refresh_interval
            scheduler.add_job(tor_list, "interval", seconds=every, id="aer_tor_list", **opts)
        if poller is not None:
            every = s.aer.audit_logs.poll_interval
            scheduler.add_job(poll, "interval", seconds=every, id="aer_audit_poll", **opts)
        scheduler.start()

    async def stop() -> None:
        for task in tasks:
            task.cancel()
        for each in listener:
            await asyncio.to_thread(each.stop)
        if scheduler.running:
            scheduler.shutdown(wait=False)
        await asyncio.to_thread(service.flush_profiles)
        if publisher is not None:
            await publisher.close()

    runtime.on_start.append(start)
    runtime.on_stop.append(stop)
    return service
