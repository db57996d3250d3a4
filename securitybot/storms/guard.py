"""Counting one detection's DMs, and holding those past ``storm.max_people`` per ``storm.window``.

A detection is its alerts' kind and source (``<kind>:<source>``). The count lives in SQL, not
in a process: every transaction that is about to DM for a detection first locks its
``storm_keys`` row (an upsert, so on SQLite it is also the write that takes the database's
write lock), then counts the distinct people DMed in the window. Replicas therefore admit one
detection's DMs one after another, and two of them cannot both let person 26 through.

Past the limit an alert is *held* (status ``held``, reason ``storm``): it joins the
detection's open storm (or opens one), which stays open until a responder decides or
``storm.window`` passes with no new alert; while it is open every new alert of the detection
joins it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from securitybot import metrics
from securitybot.config import StormConfig
from securitybot.store.models import Alert
from securitybot.store.once import dialect_insert
from securitybot.store.outbox import enqueue
from securitybot.store.storm_models import Storm, StormAlert, StormDm, StormKey

SESSION_KEY = "storm"  # Database.session_info: the StormConfig (absent: no guard)
POST_EFFECT = "storm_post"
UPDATE_EFFECT = "storm_update"
OPEN = "open"
KEYS = cast(Table, StormKey.__table__)
DMS = cast(Table, StormDm.__table__)
STORMS = cast(Table, Storm.__table__)
HELD = cast(Table, StormAlert.__table__)


def key_of(kind: str, source: str) -> str:
    return f"{kind}:{source}"


def config_of(session: Session) -> StormConfig | None:
    cfg = session.info.get(SESSION_KEY)
    return cfg if isinstance(cfg, StormConfig) else None


def lock(session: Session, keys: Iterable[str], now: datetime) -> None:
    """Lock the detections' rows, sorted, one statement each (a multi-row upsert locks in no
    set order), so two transactions over the same detections cannot deadlock."""
    stmt = dialect_insert(session, KEYS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"], set_={"updated_at": stmt.excluded.updated_at}
    )
    conn = session.connection()
    for key in sorted(set(keys)):
        conn.execute(stmt, {"key": key, "updated_at": now})


def open_storm(session: Session, key: str, now: datetime) -> Storm | None:
    """The detection's storm that new alerts still join: open, and the last alert held less
    than its window ago. The caller holds the detection's lock."""
    found = session.scalars(
        select(Storm).where(Storm.key == key, Storm.status == OPEN).order_by(Storm.id.desc())
    ).first()
    if found is None or found.last_at <= now - timedelta(seconds=found.window):
        return None
    return found


@dataclass
class _Detection:
    key: str
    kind: str
    source: str
    max_people: int
    window: float
    counted: int = 0  # distinct people DMed in the window
    people: set[str] = field(default_factory=set)  # of the batch's people, those counted
    known: set[str] = field(default_factory=set)  # of those, the ones with a row already
    storm_id: int | None = None
    new_storm: bool = False
    held: int = 0


@dataclass(frozen=True)
class Split:
    admitted: list[Alert]
    held: list[tuple[Alert, int]]  # (alert, storm id)


def split(
    session: Session, cfg: StormConfig, alerts: Sequence[Alert], users: dict[int, str],
    now: datetime,
) -> Split:  # fmt: skip
    """Which of ``alerts`` (about to be DMed to ``users[alert.id]``, in id order) may be DMed,
    and which are held (and in which storm). Records both, and queues the storms' messages."""
    detections: dict[str, _Detection] = {}
    for alert in alerts:
        key = key_of(alert.kind, alert.source)
        if key not in detections:
            people, window = cfg.limit(alert.kind)
            detections[key] = _Detection(key, alert.kind, alert.source, people, window)
    lock(session, detections, now)
    for d in detections.values():
        storm = open_storm(session, d.key, now)
        since = now - timedelta(seconds=d.window)
        # One row per person DMed (its last DM): once those past the window are gone, the
        # rows left are the window's people. Only the batch's own are read, and the others
        # counted in the index: under the lock, whatever the window holds.
        session.execute(delete(StormDm).where(StormDm.key == d.key, StormDm.at <= since))
        of_key = StormDm.key == d.key
        # DISTINCT: the previous release wrote a row per DM, and may still during a rolling
        # restart (docs/upgrades.md); nothing else ever writes a second row for a person.
        in_window = func.count(func.distinct(StormDm.user_id))
        counted = session.scalar(select(in_window).where(of_key))
        d.counted = int(counted or 0)
        mine = sorted({users[a.id] for a in alerts if key_of(a.kind, a.source) == d.key})
        d.people = set(
            session.scalars(select(StormDm.user_id).where(of_key, StormDm.user_id.in_(mine)))
        )
        d.known = set(d.people)
        d.storm_id = storm.id if storm is not None else None
    admitted: list[Alert] = []
    held: list[tuple[Alert, int]] = []
    dms: dict[tuple[str, str], dict[str, Any]] = {}  # (detection, person): their last DM
    conn = session.connection()
    for alert in alerts:
        d = detections[key_of(alert.kind, alert.source)]
        user = users[alert.id]
        if d.storm_id is None and (user in d.people or d.counted < d.max_people):
            if user not in d.people:
                d.people.add(user)
                d.counted += 1
            dms[(d.key, user)] = {"key": d.key, "user_id": user, "alert_id": alert.id, "at": now}
            admitted.append(alert)
            continue
        if d.storm_id is None:
            values = {"key": d.key, "kind": d.kind, "source": d.source, "status": OPEN,
                      "people": d.counted, "held": 0, "max_people": d.max_people,
                      "window": d.window, "version": 0, "shown_version": 0, "opened_at": now,
                      "last_at": now}  # fmt: skip
            stmt = STORMS.insert().returning(STORMS.c.id)
            d.storm_id, d.new_storm = int(conn.execute(stmt, values).scalar_one()), True
        conn.execute(HELD.insert(), {"alert_id": alert.id, "storm_id": d.storm_id,
                                     "user_id": user, "created_at": now})  # fmt: skip
        d.held += 1
        held.append((alert, d.storm_id))
        metrics.STORM_HELD.labels(alert.kind).inc()
    if dms:
        _note_dms(conn, list(dms.values()), {d.key: d.known for d in detections.values()})
    for d in detections.values():
        if d.storm_id is not None and d.held:
            _grown(session, d.storm_id, d.held, now, new=d.new_storm)
    return Split(admitted, held)


_REDMED = (
    update(DMS)
    .where(DMS.c.key == bindparam("k"), DMS.c.user_id == bindparam("u"))
    .values(alert_id=bindparam("alert"), at=bindparam("when"))
)


def _note_dms(conn: Any, dms: list[dict[str, Any]], known: dict[str, set[str]]) -> None:
    """One row per (detection, person), moved to their latest DM: updated for people the
    window counts already, inserted for the others. The detection's lock is held, so no
    other transaction writes its rows meanwhile."""
    again = [d for d in dms if d["user_id"] in known[d["key"]]]
    new = [d for d in dms if d["user_id"] not in known[d["key"]]]
    if again:
        conn.execute(_REDMED, [{"k": d["key"], "u": d["user_id"], "alert": d["alert_id"],
                                "when": d["at"]} for d in again])  # fmt: skip
    if new:
        conn.execute(DMS.insert(), new)


def _grown(session: Session, storm_id: int, more: int, now: datetime, *, new: bool) -> None:
    version = session.connection().execute(
        update(STORMS).where(STORMS.c.id == storm_id)
        .values(held=STORMS.c.held + more, version=STORMS.c.version + 1, last_at=now)
        .returning(STORMS.c.version)
    ).scalar_one()  # fmt: skip
    if new:
        enqueue(session, effect=POST_EFFECT, payload={"storm_id": storm_id},
                idempotency_key=f"storm-post:{storm_id}")  # fmt: skip
    else:
        queue_update(session, storm_id, version)


def queue_update(session: Session, storm_id: int, version: int) -> None:
    enqueue(session, effect=UPDATE_EFFECT, payload={"storm_id": storm_id},
            idempotency_key=f"storm-update:{storm_id}:{version}")  # fmt: skip


def held_users(session: Session, storm_id: int) -> list[str]:
    q = select(StormAlert.user_id).where(StormAlert.storm_id == storm_id)
    return list(dict.fromkeys(session.scalars(q.order_by(StormAlert.alert_id))))
