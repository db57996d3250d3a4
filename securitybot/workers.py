"""``securitybot serve --workers N``: N service processes sharing one listening socket.

Each process is a whole service (HTTP API, Slack app, dispatcher, sweep) with its own
database pool; they share the work the way replicas do (``FOR UPDATE SKIP LOCKED`` claims,
version-guarded transitions), so it needs PostgreSQL. The parent binds the socket, forks the
workers before anything else starts (no threads, no connections yet), passes SIGTERM/SIGINT on,
and stops them all if one dies, so a supervisor (systemd, Kubernetes) sees the failure.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from types import FrameType

from sqlalchemy.engine import make_url

from securitybot.config import Settings
from securitybot.store.db import normalise_url

logger = logging.getLogger(__name__)


class WorkersError(Exception):
    pass


def check_workers(settings: Settings, workers: int, socket_mode: bool) -> None:
    if workers < 1:
        raise WorkersError("serve: --workers must be at least 1")
    if workers == 1:
        return
    if make_url(normalise_url(settings.database.url)).get_backend_name() != "postgresql":
        raise WorkersError("serve: --workers needs PostgreSQL; SQLite is served by one process")
    if socket_mode:
        raise WorkersError("serve: --socket-mode runs in one process; drop --workers")


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_workers(settings: Settings, workers: int, host: str, port: int) -> int:
    """Fork ``workers`` processes serving ``host:port``; returns the exit code."""
    from securitybot.service import serve_on_socket
    from securitybot.store.db import Database, check_schema

    # Refuse here, once, rather than in every worker; the engine is gone before the fork.
    db = Database.from_url(settings.database.url, pool_size=1)
    try:
        check_schema(db.engine)
    finally:
        db.dispose()
    sock = bind(host, port)
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                serve_on_socket(settings, sock)
                code = 0
            except BaseException:
                logger.exception("worker %s failed", os.getpid())
                code = 1
            logging.shutdown()
            os._exit(code)
        children.append(pid)
    sock.close()
    logger.warning("serving on %s:%s with %s worker processes %s", host, port, workers, children)

    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True  # asked to stop: workers ending on this signal are not failing
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = 0
    alive = set(children)
    while alive:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        alive.discard(pid)
        exit_code = os.waitstatus_to_exitcode(status)
        if exit_code not in (0, -signal.SIGTERM, -signal.SIGINT):
            code = code or 1
        if not stopping:  # one worker gone: stop the others, and let the supervisor decide
            if exit_code != 0:
                logger.error("worker %s exited with %s; stopping the others", pid, exit_code)
            forward(signal.SIGTERM, None)
    sys.stdout.flush()
    return code
