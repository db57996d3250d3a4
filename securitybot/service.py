"""Assembling and running the whole service (used by ``serve``, the demo and end-to-end tests)."""

from __future__ import annotations

import contextlib
import fcntl
import gc
import logging
import os
import socket
from pathlib import Path
from types import FrameType
from typing import IO

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from securitybot.app import create_app
from securitybot.config import Settings
from securitybot.masking import mask_url, scrub
from securitybot.runtime import Runtime
from securitybot.store.db import Database, check_schema, normalise_url

logger = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """A start-up problem worth one clear line."""


def sqlite_single_process_lock(url: str) -> IO[str] | None:
    """Hold an exclusive lock beside an SQLite file: one serving process per file.

    SQLite has no row locks to share work between replicas, so a second process would DM and
    escalate everything twice. PostgreSQL is the store for several replicas.
    """
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    lock_path = Path(f"{parsed.database}.lock")
    handle = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ServiceError(
            f"another securitybot process is already serving {parsed.database}; SQLite supports "
            "one process (use PostgreSQL for several replicas)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def build_service(
    settings: Settings, db: Database | None = None, *, socket_mode: bool = False,
    extra_routes: list[BaseRoute] | None = None,
) -> tuple[Runtime, Starlette]:  # fmt: skip
    """``extra_routes`` lets the demo mount its console into the very same app."""
    runtime = Runtime.build(settings, db)
    check_schema(runtime.db.engine)
    from securitybot.dashboard import dashboard_routes
    from securitybot.wiring import wire_workers

    routes = wire_workers(runtime, socket_mode=socket_mode)
    routes += dashboard_routes(settings.dashboard, runtime.db)
    routes += extra_routes or []
    return runtime, create_app(runtime, routes)


def uvicorn_config(
    app: Starlette, settings: Settings, *, host: str | None = None, port: int | None = None
) -> uvicorn.Config:
    """uvicorn logging through our handlers (see logs.configure_logging), not its own."""
    return uvicorn.Config(
        app,
        host=host or settings.server.host,
        port=port if port is not None else settings.server.port,
        # None: keep the logging configure_logging set up. uvicorn's default dictConfig would
        # give its loggers their own plain-text handlers (a 40-line traceback per error).
        log_config=None,
        log_level=None,
        access_log=settings.logging.access_log,
        # The rest of server.shutdown_grace goes to the outbox's jobs in flight (wiring).
        # uvicorn hands it to asyncio.timeout, which takes seconds as a float; its annotation
        # says int.
        timeout_graceful_shutdown=settings.server.shutdown_grace / 4,  # type: ignore[arg-type]
        timeout_keep_alive=round(settings.server.keep_alive_timeout),
        # uvicorn would otherwise rewrite the client address from X-Forwarded-For for any
        # request from 127.0.0.1; the dashboard decides per `dashboard.trusted_proxies`.
        proxy_headers=False,
    )


class GracefulServer(uvicorn.Server):
    """uvicorn's server, which also tells the runtime the moment SIGTERM (or Ctrl-C) arrives:
    the outbox stops claiming work at once, not only once open HTTP requests have drained."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self.runtime = runtime

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.runtime.drain_soon()


def freeze_startup_heap() -> None:
    """Leave what start-up built (modules, the app and its wiring: ~150,000 objects, all alive
    until exit) out of every later garbage collection. Each full collection walked them all,
    about 100 ms with the event loop stopped, whenever enough objects of requests in flight had
    aged into the oldest generation: every few seconds under load, a tenth of ingest's CPU
    (bench/ingest.py, workers off: 0.62-0.71x the minimal-insert limit without, 0.72-0.83x
    with). Objects made later are collected as before."""
    gc.collect()
    gc.freeze()


def run_service(
    settings: Settings, *, host: str | None = None, port: int | None = None,
    socket_mode: bool = False,
) -> None:  # fmt: skip
    lock = sqlite_single_process_lock(settings.database.url)
    try:
        try:
            runtime, app = build_service(settings, socket_mode=socket_mode)
        except SQLAlchemyError as exc:
            # As `migrate` does: the URL (password hidden) and the driver's first line, which
            # names the cause ("connection refused", "password authentication failed").
            url = normalise_url(settings.database.url)
            cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            raise ServiceError(
                f"serve: cannot use the database at {mask_url(url)}: "
                f"{type(exc).__name__}: {scrub(cause[0] if cause else '', url)}"
            ) from None
        notes = settings.unconfigured()
        if notes:
            logger.warning("not configured yet: %s", "; ".join(notes))
        server = GracefulServer(uvicorn_config(app, settings, host=host, port=port), runtime)
        freeze_startup_heap()
        with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: Ctrl-C is how it ends
            server.run()
        if not server.started:
            raise ServiceError("serve: the server did not start (its error is logged above)")
    finally:
        if lock is not None:
            lock.close()


def serve_on_socket(settings: Settings, sock: socket.socket) -> None:
    """One worker of ``serve --workers N``: the whole service on an inherited socket."""
    runtime, app = build_service(settings)
    server = GracefulServer(uvicorn_config(app, settings), runtime)
    freeze_startup_heap()
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
