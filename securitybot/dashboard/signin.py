"""Dashboard sign-in state kept in the database: attempt counters and server-side sessions.

In process memory, neither held: a restart forgot both the failed attempts and the sign-outs
(a signed-out cookie worked again), and each replica counted on its own. Worse, the limit was
read before failures were recorded, so forty concurrent guesses were all checked. Here an
attempt is *reserved* by one atomic upsert before the password is checked; once a key has used
up its window, the upsert's WHERE refuses and nothing is checked at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, case, delete, literal, or_, select, update

from securitybot.store.dashboard_models import DashboardSessionRow, LoginAttempt
from securitybot.store.db import Database
from securitybot.store.models import UTCDateTime, utcnow
from securitybot.store.once import Every, dialect_insert, fit_key

ATTEMPTS = cast(Table, LoginAttempt.__table__)
PRUNE_EVERY = 60.0  # seconds between prunes, per process


class _Refused(Exception):
    """A key has no attempts left: roll back the reservations already made for this request."""


class LoginAttempts:
    """At most ``limit`` sign-in attempts per key in a fixed ``window`` (seconds) that starts
    at the first attempt; a successful sign-in clears its keys."""

    def __init__(self, db: Database, limit: int = 5, window: float = 300.0) -> None:
        self.db, self.limit, self.window = db, limit, window
        self._prune = Every(PRUNE_EVERY)

    def _reserve_stmt(self, conn: Connection, key: str, now: datetime) -> Any:
        at = literal(now, UTCDateTime())
        expired = ATTEMPTS.c.window_start < literal(
            now - timedelta(seconds=self.window), UTCDateTime()
        )
        stmt = dialect_insert(conn, ATTEMPTS).values(key=key, failures=1, window_start=now)
        # ON CONFLICT … DO UPDATE … WHERE: PostgreSQL locks the row and evaluates the WHERE
        # against its latest version, SQLite has a single writer; either way two concurrent
        # requests cannot both take the last attempt. No row back means no attempt left.
        return stmt.on_conflict_do_update(
            index_elements=[ATTEMPTS.c.key],
            set_={
                "failures": case((expired, 1), else_=ATTEMPTS.c.failures + 1),
                "window_start": case((expired, at), else_=ATTEMPTS.c.window_start),
            },
            where=or_(ATTEMPTS.c.failures < self.limit, expired),
        ).returning(ATTEMPTS.c.failures)

    def reserve(self, keys: Sequence[str]) -> bool:
        """Count one attempt against every key, or none when any key is used up (then the
        password must not be checked)."""
        self._maybe_prune()
        now = utcnow()
        try:
            with self.db.write() as session:
                conn = session.connection()
                # Always the same key order, so concurrent requests cannot deadlock.
                for key in keys:
                    stmt = self._reserve_stmt(conn, fit_key(key), now)
                    if conn.execute(stmt).first() is None:
                        raise _Refused
        except _Refused:
            return False
        return True

    def succeeded(self, keys: Sequence[str]) -> None:
        with self.db.write() as session:
            # One key at a time, in the order reserve() locks them: no deadlock between the two.
            for key in keys:
                session.execute(delete(LoginAttempt).where(LoginAttempt.key == fit_key(key)))

    def _maybe_prune(self) -> None:
        # Every guessed username leaves a row; drop the ones whose window is over.
        if not self._prune.due():
            return
        cutoff = utcnow() - timedelta(seconds=self.window)
        with self.db.write() as session:
            session.execute(delete(LoginAttempt).where(LoginAttempt.window_start < cutoff))


def _session_pk(sid: str) -> str:
    # Only a hash is stored: a leaked table (a backup, a read-only replica) yields no cookies.
    return hashlib.sha256(sid.encode()).hexdigest()


@dataclass(frozen=True)
class StoredSession:
    """What the row of an active session adds to its cookie (set for OIDC sessions)."""

    role: str | None = None
    subject: str | None = None
    email: str | None = None


class SessionStore:
    """Server-side sessions: a signed cookie is honoured only while its row exists, has not
    expired and has not been signed out, in any process and after any restart."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._prune = Every(PRUNE_EVERY)

    def create(
        self, *, sid: str, username: str, via: str, expires: datetime, stored: StoredSession
    ) -> None:
        self._maybe_prune()
        with self.db.write() as session:
            row = DashboardSessionRow(
                id=_session_pk(sid), username=username, via=via, expires_at=expires,
                role=stored.role, subject=stored.subject, email=stored.email,
            )  # fmt: skip
            session.add(row)

    def active(self, *, sid: str, username: str) -> StoredSession | None:
        """The session's stored identity while it is active, else None."""
        with self.db.read() as session:
            row = session.scalars(
                select(DashboardSessionRow).where(DashboardSessionRow.id == _session_pk(sid))
            ).first()
            if (
                row is None
                or row.username != username
                or row.revoked_at is not None
                or row.expires_at <= utcnow()
            ):
                return None
            return StoredSession(role=row.role, subject=row.subject, email=row.email)

    def revoke(self, *, sid: str) -> None:
        with self.db.write() as session:
            session.execute(
                update(DashboardSessionRow)
                .where(DashboardSessionRow.id == _session_pk(sid))
                .values(revoked_at=utcnow())
            )

    def _maybe_prune(self) -> None:
        if not self._prune.due():
            return
        with self.db.write() as session:
            session.execute(
                delete(DashboardSessionRow).where(DashboardSessionRow.expires_at < utcnow())
            )
