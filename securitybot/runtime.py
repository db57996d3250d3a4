"""The one place that builds the service's long-lived objects and hands them to the edges."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from securitybot.config import Settings
from securitybot.ingest.auth import Authenticator
from securitybot.ingest.replays import ReplayGuard
from securitybot.ingest.service import GroupCommitter
from securitybot.kinds import KindRegistry, load_kinds
from securitybot.metrics import Metrics
from securitybot.outbox.jobs import Wake
from securitybot.paging import hooks as paging
from securitybot.store.db import Database
from securitybot.storms import guard as storm_guard

Hook = Callable[[], Awaitable[None]]


@dataclass
class Runtime:
    settings: Settings
    db: Database
    kinds: KindRegistry
    authenticator: Authenticator
    ingest: GroupCommitter
    metrics: Metrics
    # Set by wiring when configured (kept loosely typed to avoid import cycles).
    slack: Any = None
    responders: Any = None
    # Each person's language (flows/locales.py): told when the team chooses another one.
    locales: Any = None
    bolt: Any = None
    # slack.bot_token's own auth.test, which the team guard's list learns (slack/teams.py).
    slack_home: Any = None
    # slack.oauth: the workspaces installed through OAuth (slack/multi_workspace.py).
    slack_oauth: Any = None
    dispatcher: Any = None
    handlers: dict[str, Any] = field(default_factory=dict)
    # Background work (dispatcher, scheduler, Socket Mode) registers start/stop hooks here.
    on_start: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)
    # /readyz asks each of these besides the database: None means ready, else why not.
    readiness: dict[str, Callable[[], Awaitable[str | None]]] = field(default_factory=dict)
    _wakers: list[Wake] = field(default_factory=list)
    # Told at once on SIGTERM (before open HTTP requests drain): stop taking new work.
    on_drain: list[Callable[[], None]] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def build(cls, settings: Settings, db: Database | None = None) -> Runtime:
        database = db or Database.from_url(
            settings.database.url,
            pool_size=settings.database.pool_size,
            echo=settings.database.echo,
        )
        kinds = load_kinds(settings.alerts.dir)
        database.session_info["outbound_webhooks"] = list(settings.webhooks.outbound)
        database.session_info[storm_guard.SESSION_KEY] = settings.storm
        database.session_info[paging.SESSION_KEY] = paging.PagingRules.from_settings(
            settings, kinds
        )
        return cls(
            settings=settings,
            db=database,
            kinds=kinds,
            authenticator=Authenticator(
                settings.ingest,
                replays=ReplayGuard(database, settings.ingest.replay_window),
            ),
            ingest=GroupCommitter(database, kinds, settings.policy),
            metrics=Metrics(database, slack_configured=settings.slack.configured),
        )

    def on_new_work(self, waker: Wake) -> None:
        """``waker`` is told of new work with the effects written (the dispatcher wakes
        only who claims them)."""
        self._wakers.append(waker)

    def notify_new_work(self, effects: Iterable[str] | None = None) -> None:
        """New outbox work was written: of ``effects`` (None: of any effect)."""
        named = None if effects is None else frozenset(effects)
        if named is not None and not named:
            return
        for waker in self._wakers:
            waker(named)

    def drain_soon(self) -> None:
        """From a signal handler: run the drain hooks on the event loop, as soon as it can."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        for hook in self.on_drain:
            hook()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for hook in self.on_start:
            await hook()

    async def stop(self) -> None:
        for hook in reversed(self.on_stop):
            await hook()
        await self.ingest.close()
