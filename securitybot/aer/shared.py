"""AER state shared by every process: version counters, the Tor exit list, open sessions.

A change (new baselines, a new Tor list) is written to SQL together with a bumped row in
``aer_versions``; processes compare those few numbers every few seconds and reload what moved.
On PostgreSQL the bump also sends ``NOTIFY aer_versions`` (delivered at commit), so listeners
reload at once; the poll is what makes SQLite, and a missed notification, work anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import cast

from sqlalchemy import Table, select, text
from sqlalchemy.orm import Session

from securitybot.store.aer_models import AerSession, AerThreatList, AerVersion
from securitybot.store.models import utcnow
from securitybot.store.once import dialect_insert

CHANNEL = "aer_versions"
BASELINES = "baselines"
TOR_LIST = "tor_list"
VERSIONS = cast(Table, AerVersion.__table__)
SESSIONS = cast(Table, AerSession.__table__)

SessionState = tuple[str, str | None, str | None]  # (user, first user agent, first client)


def bump(session: Session, name: str) -> int:
    """Add one to ``name``'s version (an upsert: two first bumps cannot collide) and notify."""
    stmt = dialect_insert(session, VERSIONS).values(name=name, version=1, updated_at=utcnow())
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"version": VERSIONS.c.version + 1, "updated_at": stmt.excluded.updated_at},
    ).returning(VERSIONS.c.version)
    version = int(session.connection().execute(stmt).scalar_one())
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": name})
    return version


def versions(session: Session) -> dict[str, int]:
    return {n: int(v) for n, v in session.execute(select(AerVersion.name, AerVersion.version))}


def save_threat_list(session: Session, name: str, entries: Iterable[str], source: str) -> None:
    row = session.get(AerThreatList, name)
    if row is None:
        row = AerThreatList(name=name)
        session.add(row)
    row.entries, row.source, row.fetched_at = sorted(entries), source, utcnow()
    session.flush()


def threat_list(session: Session, name: str) -> AerThreatList | None:
    return session.get(AerThreatList, name)


def save_sessions(session: Session, states: Mapping[tuple[str, str], SessionState]) -> None:
    """Upsert each (org, session)'s first user agent and client: one statement per batch."""
    if not states:
        return
    stmt = dialect_insert(session, SESSIONS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["org", "session_id"],
        set_={c: getattr(stmt.excluded, c) for c in ("user_agent", "client", "updated_at")},
    )
    now = utcnow()
    rows = [
        {"org": org, "session_id": sid, "user_id": user, "user_agent": ua, "client": client,
         "updated_at": now}
        for (org, sid), (user, ua, client) in states.items()
    ]  # fmt: skip
    session.connection().execute(stmt, rows)


def load_sessions(session: Session, since: datetime) -> list[AerSession]:
    """Sessions seen since ``since``, oldest first (the engine keeps the newest when full)."""
    q = select(AerSession).where(AerSession.updated_at >= since).order_by(AerSession.updated_at)
    return list(session.scalars(q))
