"""AER queries. Hot-path writes (counters, profiles) are batched upserts, never a row per event."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from securitybot.aer.baselines import Baseline
from securitybot.aer.decide import UserHistory
from securitybot.aer.detect import CounterKey
from securitybot.store.aer_models import (
    AerAnomaly,
    AerBaseline,
    AerCounter,
    AerNotification,
    AerPollerState,
    AerProfile,
    AerSettingsSnapshot,
    AerUserState,
)
from securitybot.store.models import AuditLog, utcnow
from securitybot.store.once import dialect_insert

COUNTERS = cast(Table, AerCounter.__table__)
BASELINES = cast(Table, AerBaseline.__table__)
PROFILES = cast(Table, AerProfile.__table__)
ANOMALIES = cast(Table, AerAnomaly.__table__)
# Reset and escalation memory is bounded: old sessions are long dead and only bloat the row.
_MAX_SESSIONS = 200


def add_counters(session: Session, counters: Mapping[CounterKey, int]) -> None:
    """Add deltas to the hourly counters: one multi-row upsert for the whole batch."""
    if not counters:
        return
    stmt = dialect_insert(session, COUNTERS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["org", "user_id", "action", "bucket_start"],
        set_={"count": COUNTERS.c.count + stmt.excluded.count},
    )
    rows = [
        {"org": o, "user_id": u, "action": a, "bucket_start": b, "count": n}
        for (o, u, a, b), n in counters.items()
    ]
    session.connection().execute(stmt, rows)


def window_counts(
    session: Session, since: datetime, until: datetime, actions: Iterable[str]
) -> dict[tuple[str, str], list[int]]:
    """Per (org, action), every user-hour count in ``[since, until)``: a baseline's input."""
    q = select(AerCounter.org, AerCounter.action, AerCounter.count).where(
        AerCounter.bucket_start >= since,
        AerCounter.bucket_start < until,
        AerCounter.action.in_(list(actions)),
    )
    out: dict[tuple[str, str], list[int]] = {}
    for org, action, count in session.execute(q):
        out.setdefault((org, action), []).append(int(count))
    return out


def live_counters(session: Session, since: datetime) -> list[tuple[str, str, str, datetime, int]]:
    q = select(
        AerCounter.org, AerCounter.user_id, AerCounter.action, AerCounter.bucket_start,
        AerCounter.count,
    ).where(AerCounter.bucket_start >= since)  # fmt: skip
    return [(o, u, a, b, int(n)) for o, u, a, b, n in session.execute(q)]


def save_baselines(session: Session, baselines: Sequence[Baseline]) -> None:
    if not baselines:
        return
    stmt = dialect_insert(session, BASELINES)
    cols = ("level", "samples", "p50", "p90", "p99", "mad", "computed_at")
    stmt = stmt.on_conflict_do_update(
        index_elements=["org", "action"], set_={c: getattr(stmt.excluded, c) for c in cols}
    )
    rows = [
        {"org": b.org, "action": b.action, **{c: getattr(b, c) for c in cols}} for b in baselines
    ]
    session.connection().execute(stmt, rows)


def load_baselines(session: Session) -> list[Baseline]:
    return [
        Baseline(r.org, r.action, r.level, r.samples, r.p50, r.p90, r.p99, r.mad, r.computed_at)
        for r in session.scalars(select(AerBaseline))
    ]


def save_profiles(session: Session, profiles: Mapping[tuple[str, str], tuple[Any, ...]]) -> None:
    if not profiles:
        return
    stmt = dialect_insert(session, PROFILES)
    cols = ("asns", "countries", "ua_products", "updated_at")
    stmt = stmt.on_conflict_do_update(
        index_elements=["org", "user_id"], set_={c: getattr(stmt.excluded, c) for c in cols}
    )
    now = utcnow()
    rows = [
        {"org": o, "user_id": u, "asns": sorted(a), "countries": sorted(c),
         "ua_products": sorted(f), "updated_at": now}
        for (o, u), (a, c, f) in profiles.items()
    ]  # fmt: skip
    session.connection().execute(stmt, rows)


def load_profiles(session: Session) -> list[AerProfile]:
    return list(session.scalars(select(AerProfile)))


# --- preceding activity --------------------------------------------------------------------


def _state(session: Session, org: str, user: str) -> AerUserState:
    row = session.get(AerUserState, (org, user))
    if row is None:
        row = AerUserState(org=org, user_id=user, reset_sessions=[], escalated_sessions=[])
        session.add(row)
    return row


def user_history(session: Session, org: str, user: str) -> UserHistory:
    row = session.get(AerUserState, (org, user))
    if row is None:
        return UserHistory()
    return UserHistory(
        last_reset_at=row.last_reset_at,
        reset_sessions=frozenset(row.reset_sessions or ()),
        escalated_sessions=frozenset(row.escalated_sessions or ()),
    )


def record_reset(
    session: Session, org: str, user: str, at: datetime, sessions: Iterable[str]
) -> None:
    row = _state(session, org, user)
    row.last_reset_at = at
    merged = list(dict.fromkeys([*(row.reset_sessions or []), *sessions]))
    row.reset_sessions = merged[-_MAX_SESSIONS:]
    row.updated_at = at
    session.flush()


def revoke_reset(
    session: Session, org: str, user: str, anomaly_id: int, sessions: Iterable[str]
) -> None:
    """Slack refused the reset recorded for ``anomaly_id``: it must not count in the history.

    The last reset becomes the newest other one that was not refused (so cool-down and
    persistence keep working for a user who really was reset), and this reset's sessions are
    no longer "already reset".
    """
    row = session.get(AerUserState, (org, user), with_for_update=True)
    if row is None:
        return
    q = select(AerAnomaly.created_at).where(
        AerAnomaly.org == org, AerAnomaly.user_id == user, AerAnomaly.verdict == "reset",
        AerAnomaly.id != anomaly_id,
        (AerAnomaly.response.is_(None)) | (AerAnomaly.response.not_like("reset_refused%")),
    ).order_by(AerAnomaly.created_at.desc()).limit(1)  # fmt: skip
    row.last_reset_at = session.scalar(q)
    gone = set(sessions)
    row.reset_sessions = [s for s in row.reset_sessions or [] if s not in gone]
    session.flush()


def record_escalation(session: Session, org: str, user: str, sid: str | None, at: datetime) -> None:
    row = _state(session, org, user)
    if sid is not None:
        merged = list(dict.fromkeys([*(row.escalated_sessions or []), sid]))
        row.escalated_sessions = merged[-_MAX_SESSIONS:]
    row.updated_at = at
    session.flush()


# --- decisions -------------------------------------------------------------------------------


def insert_anomaly(session: Session, values: dict[str, Any]) -> int | None:
    """The new id, or None when ``source_ref`` was already recorded (a re-polled entry)."""
    stmt = dialect_insert(session, ANOMALIES).on_conflict_do_nothing().returning(ANOMALIES.c.id)
    row = session.connection().execute(stmt, values).first()
    return None if row is None else int(row[0])


def set_response(session: Session, anomaly_id: int, response: str) -> str | None:
    """Record the orchestrator's outcome; returns the previous one (None: first time)."""
    row = session.get(AerAnomaly, anomaly_id, with_for_update=True)
    if row is None:
        return None
    previous = row.response
    row.response = response
    session.flush()
    return previous


# --- settings snapshots and poller position --------------------------------------------------


def get_snapshot(session: Session, org: str) -> dict[str, Any] | None:
    row = session.get(AerSettingsSnapshot, org)
    return None if row is None else dict(row.settings)


def put_snapshot(session: Session, org: str, settings: dict[str, Any]) -> None:
    row = session.get(AerSettingsSnapshot, org)
    if row is None:
        session.add(AerSettingsSnapshot(org=org, settings=settings, updated_at=utcnow()))
    else:
        row.settings, row.updated_at = settings, utcnow()
    session.flush()


def poller_position(session: Session, name: str) -> tuple[str | None, int, int]:
    """(cursor, oldest, high_water) of the poller called ``name``."""
    row = session.get(AerPollerState, name)
    return (None, 0, 0) if row is None else (row.cursor, int(row.oldest), int(row.high_water))


def save_poller_position(
    session: Session, name: str, cursor: str | None, oldest: int, high_water: int
) -> None:
    row = session.get(AerPollerState, name)
    if row is None:
        row = AerPollerState(name=name)
        session.add(row)
    row.cursor, row.oldest, row.high_water, row.updated_at = cursor, oldest, high_water, utcnow()
    session.flush()


# --- notifications ---------------------------------------------------------------------------


def bump_notification(
    session: Session, org: str, user: str, kind: str, recipient: str, reason: str,
    now: datetime, since: datetime, reason_i18n: dict[str, Any] | None = None,
) -> tuple[int, int]:  # fmt: skip
    """Count one more anomaly into the open message for this key, or open one: (id, count).
    ``reason``: in English; ``reason_i18n``: the same as a message (``aer.reason``)."""
    q = (
        select(AerNotification)
        .where(
            AerNotification.org == org,
            AerNotification.user_id == user,
            AerNotification.type == kind,
            AerNotification.recipient == recipient,
            AerNotification.last_at >= since,
        )
        .order_by(AerNotification.id.desc())
        .limit(1)
        .with_for_update()
    )
    row = session.scalars(q).first()
    if row is None:
        row = AerNotification(
            org=org, user_id=user, type=kind, recipient=recipient, count=1, shown_count=0,
            last_reason=reason, last_reason_i18n=reason_i18n, first_at=now, last_at=now,
        )  # fmt: skip
        session.add(row)
    else:
        row.count += 1
        row.last_reason, row.last_reason_i18n, row.last_at = reason, reason_i18n, now
    session.flush()
    return row.id, row.count


# --- listings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    org: str | None = None
    user: str | None = None
    since: datetime | None = None
    before_id: int | None = None
    limit: int = 50


def list_audit(session: Session, f: AuditFilter) -> tuple[list[AuditLog], int | None]:
    """Newest first; returns the rows and the id to continue before (None: last page)."""
    q = select(AuditLog).order_by(AuditLog.id.desc()).limit(f.limit + 1)
    if f.action:
        q = q.where(AuditLog.action == f.action)
    if f.org:
        q = q.where(AuditLog.org == f.org)
    if f.user:
        q = q.where(AuditLog.subject_user == f.user)
    if f.since:
        q = q.where(AuditLog.created_at >= f.since)
    if f.before_id is not None:
        q = q.where(AuditLog.id < f.before_id)
    rows = list(session.scalars(q))
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    return rows, (rows[-1].id if more and rows else None)


def list_anomalies(session: Session, f: AuditFilter) -> tuple[list[AerAnomaly], int | None]:
    q = select(AerAnomaly).order_by(AerAnomaly.id.desc()).limit(f.limit + 1)
    if f.action:  # for anomalies the "action" filter is the verdict
        q = q.where(AerAnomaly.verdict == f.action)
    if f.org:
        q = q.where(AerAnomaly.org == f.org)
    if f.user:
        q = q.where(AerAnomaly.user_id == f.user)
    if f.since:
        q = q.where(AerAnomaly.created_at >= f.since)
    if f.before_id is not None:
        q = q.where(AerAnomaly.id < f.before_id)
    rows = list(session.scalars(q))
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    return rows, (rows[-1].id if more and rows else None)
