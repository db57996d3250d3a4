"""Rows written at most once, keys that fit their column, and chores done now and then.

Slack receipts, seen HMAC signatures and dashboard sign-in counters all keep short-lived rows
keyed by something from outside: they share the insert-once statement (PostgreSQL and SQLite
both take ``ON CONFLICT DO NOTHING ... RETURNING``; psycopg reports ``rowcount`` -1 for it, so
RETURNING is what says whether the row went in), the hashing of over-long keys and the
throttle that prunes expired rows every few minutes per process.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def dialect_insert(bind: Session | Connection, table: Table) -> Any:
    """An INSERT that can take ``on_conflict_*`` on the backend in use."""
    name = (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name
    return postgresql.insert(table) if name == "postgresql" else sqlite.insert(table)


def insert_once(session: Session, table: Table, values: dict[str, Any]) -> bool:
    """Insert ``values`` unless a row with the same primary key exists; True if it went in."""
    conn = session.connection()
    pk = next(iter(table.primary_key.columns))
    stmt = dialect_insert(conn, table).on_conflict_do_nothing().returning(pk)
    return conn.execute(stmt, values).first() is not None


def fit_key(key: str, limit: int = 200) -> str:
    """``key`` if it fits a column of ``limit`` characters, else a prefix and its SHA-256."""
    if len(key) <= limit:
        return key
    return key[:40] + ":" + hashlib.sha256(key.encode()).hexdigest()


class Every:
    """True from :meth:`due` at most once per ``seconds`` in this process (thread-safe)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._next = 0.0
        self._lock = threading.Lock()

    def due(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                return False
            self._next = now + self.seconds
            return True
