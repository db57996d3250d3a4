"""SQL tables of dashboard sign-in: failed-attempt counters and server-side sessions.

Both live in the database rather than in process memory so that the sign-in limit and a
sign-out hold across replicas and restarts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from securitybot.store.base import Base, UTCDateTime, utcnow


class LoginAttempt(Base):
    """Sign-in attempts per key ("user:<name>" or "ip:<address>") in the current window.

    An attempt is counted *before* its password is checked, so concurrent guesses cannot all
    slip under the limit; a successful sign-in deletes the row.
    """

    __tablename__ = "login_attempts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class DashboardSessionRow(Base):
    """One signed-in session. The cookie carries a random id; only its SHA-256 is stored, so
    a copy of the table cannot be replayed as cookies.

    An OIDC session keeps the role its claims mapped to at sign-in, and who the provider said
    it was (subject and email); a password or proxy session's role is read from the
    configuration or the proxy's headers on every request instead.
    """

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
