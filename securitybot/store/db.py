"""Engine construction and schema (migration) management."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from securitybot.shipped import MIGRATIONS_DIR
from securitybot.store import outage
from securitybot.store.outage import describe
from securitybot.store.write_lock import WriteLock

logger = logging.getLogger(__name__)

# Any constant works; it only has to be the same for every replica.
_MIGRATION_LOCK_ID = 0x5EC0B07


class SchemaNotReady(RuntimeError):
    """The database is not migrated to the code's schema."""


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (SQLAlchemy's default would be psycopg2)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers (health checks, the dashboard) run while the single writer commits;
    # synchronous=NORMAL is durable against process crashes (kill -9) in WAL mode.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


# A connection idle in the pool longer than this is pinged before use (the server may have
# restarted or closed it meanwhile). Busy connections are not: a ping per checkout doubled the
# round trips of the hot path. A connection that dies while busy fails its transaction, and
# SQLAlchemy then invalidates the whole pool, so the retry (outbox lease, client retry) gets a
# fresh one.
IDLE_PING_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 10


def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    idle_since = record.info.get("checked_in_at")
    if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
        return
    try:
        cur = dbapi_conn.cursor()
        cur.execute("SELECT 1")
        cur.close()
    except Exception as exc:  # the pool replaces the connection and tries again
        raise DisconnectionError(f"idle connection is gone: {exc}") from exc


def _note_checkin(_dbapi_conn: Any, record: Any) -> None:
    if record is not None:
        record.info["checked_in_at"] = time.monotonic()


def make_engine(url: str, *, pool_size: int = 40, echo: bool = False) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        if not memory and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
        if memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, echo=echo, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        outage.watch(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in parsed.query:
        # A database behind a dead network otherwise holds each connecting thread for minutes
        # (the kernel's TCP timeout), and requests queue behind them instead of getting a 503.
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    engine = create_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=max(4, pool_size // 4),
        pool_use_lifo=True,  # reuse the warmest connections; idle extras may time out
        connect_args=connect_args,
    )  # fmt: skip
    event.listen(engine, "checkout", _ping_if_idle)
    event.listen(engine, "checkin", _note_checkin)
    outage.watch(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Apply migrations; on PostgreSQL under an advisory lock so replicas can all call it."""
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaNotReady` unless the database is at the code's head revision."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        state = "not migrated" if current is None else f"at revision {current}, code needs {head}"
        raise SchemaNotReady(
            f"the database is {state}: run `securitybot migrate` (same --config) first"
        )


def probe(engine: Engine) -> str | None:
    """None when the database answers, else why not (one line, no secret)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not reachable" for a health check
        # An outage is logged once per interval by the outage filter, not once per probe.
        logger.warning("database ping failed", exc_info=True)
        return describe(exc)
    outage.OUTAGE.worked()
    return None


def ping(engine: Engine) -> bool:
    return probe(engine) is None


class Database:
    """The engine, a session factory, and the one rule SQLite needs: a single writer at a time.

    SQLite serialises writers anyway; taking a process-local lock first turns busy-wait retries
    into an orderly queue, which is both faster and fairer under concurrent ingest.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.is_postgres = engine.dialect.name == "postgresql"
        self._write_lock = WriteLock() if self.is_sqlite else None
        # Handed to every write session (session.info) so code deep in a transaction can
        # enqueue outbound webhooks without reaching for global state.
        self.session_info: dict[str, Any] = {}

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 40, echo: bool = False) -> Database:
        return cls(make_engine(url, pool_size=pool_size, echo=echo))

    @contextmanager
    def write(self, *, priority: bool = False) -> Iterator[Session]:
        """A session in a transaction that commits on success and rolls back on error.
        ``priority``: on SQLite, go before the ordinary writers waiting (WriteLock)."""
        lock = self._write_lock
        if lock is not None:
            lock.acquire(priority)
        try:
            with self.sessions() as session, session.begin():
                session.info.update(self.session_info)
                yield session
        finally:
            if lock is not None:
                lock.release()

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
