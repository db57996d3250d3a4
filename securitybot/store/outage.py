"""The database being unreachable: how it is recognised, answered and logged.

While the database refuses connections every request and every background loop fails the same
way. Each used to log its own traceback (thousands of lines in seconds, burying the one line
that says what is wrong). Instead:

- :func:`is_unavailable` tells a database outage (connection refused or lost, a locked SQLite
  file, a pool timeout) from a bug, through wrapped exceptions too;
- the HTTP edge answers those with 503, ``Retry-After`` and ``database_unavailable``
  (app.py), and /healthz and /readyz name the cause;
- :class:`OutageLogFilter`, on the one log handler, turns every log record caused by the outage
  into at most one line per :data:`LOG_INTERVAL` (with how many it held back), whoever logs it;
- the engine's own events notice when it works again, and that is logged once.
  Nothing restarts: SQLAlchemy invalidates dead connections and opens new ones.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from securitybot.masking import scrub

logger = logging.getLogger("securitybot.database")

# What a 503 tells the sender to wait; PostgreSQL restarts and failovers take seconds.
RETRY_AFTER_SECONDS = 5
# At most one "database unavailable" line per this many seconds, however many fail.
LOG_INTERVAL = 30.0


def _driver_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.OperationalError]
    try:
        import psycopg
    except ImportError:  # psycopg is a dependency, but SQLite alone needs none of it
        pass
    else:
        errors.append(psycopg.OperationalError)
    return tuple(errors)


UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError, PoolTimeoutError, DisconnectionError, *_driver_errors(),
)  # fmt: skip


def outage_cause(exc: BaseException | None) -> BaseException | None:
    """The database outage behind ``exc`` (itself or what it wraps), or None."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, UNAVAILABLE_ERRORS):
            return exc
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def is_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what it wraps) means the database cannot be used right now."""
    return outage_cause(exc) is not None


def describe(exc: BaseException) -> str:
    """The driver's first line ("connection refused", "database is locked"), secrets scrubbed."""
    inner = getattr(exc, "orig", None) or exc
    lines = str(inner).strip().splitlines()
    return scrub(f"{type(inner).__name__}: {lines[0] if lines else ''}")


class Outage:
    """Whether the database is known to be down, since when and why (process-wide: the log
    handler is too)."""

    def __init__(self, interval: float = LOG_INTERVAL) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self.down_since: float | None = None  # time.time() of the first failure
        self.cause = ""
        self.refused = 0  # requests answered 503 in this outage
        self._held = 0  # log lines held back since the last one written
        self._last_logged = float("-inf")  # monotonic
        self._logged_this_time = False

    def failed(self, exc: BaseException) -> None:
        exc = outage_cause(exc) or exc
        with self._lock:
            if self.down_since is None:
                self.down_since = time.time()
            self.cause = describe(exc)

    def refuse(self, exc: BaseException) -> None:
        self.failed(exc)
        with self._lock:
            self.refused += 1

    def worked(self) -> None:
        """A statement succeeded. Runs for every statement: the common case reads one field."""
        if self.down_since is None:
            return
        with self._lock:
            if self.down_since is None:
                return
            took = time.time() - self.down_since
            refused, said = self.refused, self._logged_this_time
            self.down_since, self.refused, self._logged_this_time = None, 0, False
        if said:  # only an outage that was reported is reported over
            logger.warning(
                "database is reachable again after %.1f s (%d requests answered 503)",
                took, refused,
            )  # fmt: skip

    def status(self) -> dict[str, Any] | None:
        since = self.down_since
        if since is None:
            return None
        return {"reason": self.cause, "since": datetime.fromtimestamp(since, UTC).isoformat()}

    def admit_log_line(self) -> tuple[bool, int]:
        """Whether a line about the outage may be written now, and how many were held back."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_logged < self.interval:
                self._held += 1
                return False, 0
            held, self._held, self._last_logged = self._held, 0, now
            self._logged_this_time = True
            return True, held


OUTAGE = Outage()


class OutageLogFilter(logging.Filter):
    """A record whose exception is a database outage becomes one line without a traceback, and
    at most one such line per interval is written, whoever logs it (a request, the outbox, a
    sweep, Slack's listeners, uvicorn)."""

    def __init__(self, outage: Outage = OUTAGE) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None or not is_unavailable(exc):
            return True
        self.outage.failed(exc)
        admit, held = self.outage.admit_log_line()
        if not admit:
            return False
        what = record.getMessage()
        record.msg = "database unavailable: %s (%s; %d similar lines held back, one per %g s)"
        record.args = (self.outage.cause, what, held, self.outage.interval)
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def watch(engine: Engine, outage: Outage = OUTAGE) -> None:
    """Let ``outage`` hear of the engine's failures and of the database working again: a new
    connection opened (PostgreSQL back: the dead ones were all invalidated), or a transaction
    that got as far as its commit (SQLite unlocked), besides /healthz's probe. Not a
    per-statement event: that cost the hot path a few microseconds per statement."""

    def on_error(ctx: Any) -> None:
        if ctx.is_disconnect or is_unavailable(ctx.original_exception):
            outage.failed(ctx.original_exception)

    def on_success(*_: Any) -> None:
        outage.worked()

    event.listen(engine, "handle_error", on_error)
    event.listen(engine, "connect", on_success)
    event.listen(engine, "commit", on_success)
