"""A responder's decision on a storm: Release (DM every held alert, paced through the normal
outbox), Discard (close them as ``storm_discarded``) or Escalate all (one escalation for the
group), audited, once.

The status moves with a guarded UPDATE first, under the detection's lock (the one holding
takes), so a second click, or the same click on another replica, finds it decided and changes
nothing, and no alert joins the storm while it is being decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from securitybot import held_groups, metrics
from securitybot.domain import Event, EventType
from securitybot.flows.dm_batch import lock_many
from securitybot.flows.transitions import apply_event
from securitybot.store.alerts import audit
from securitybot.store.models import Alert
from securitybot.store.storm_models import Storm, StormAlert
from securitybot.storms.guard import OPEN, STORMS, held_users, lock, queue_update

ACTIONS = {"release": "released", "discard": "discarded", "escalate": "escalated"}
_EVENTS = {
    "release": EventType.STORM_RELEASED,
    "discard": EventType.STORM_DISCARDED,
    "escalate": EventType.STORM_ESCALATED,
}


class NotFound(held_groups.NotFound):
    pass


class AlreadyResolved(held_groups.AlreadyResolved):
    def __init__(self, storm: Storm) -> None:
        super().__init__(storm.id, storm.status, storm.resolved_by,
                         f"storm {storm.id} was already {storm.status}")  # fmt: skip
        self.storm_id = storm.id


class Changed(held_groups.Changed):
    """More alerts were held since the caller looked: it must look again before deciding."""

    def __init__(self, shown: int, now: int) -> None:
        super().__init__(shown, now, "alerts")


class SelfInvolved(held_groups.SelfInvolved):
    """A responder may not decide on a storm that holds an alert about themselves."""


@dataclass(frozen=True)
class Resolved:
    storm_id: int
    status: str
    alerts: list[int]
    escalated_alert_id: int | None = None


def key_of(session: Session, storm_id: int) -> str | None:
    """The storm's detection key (it never changes): read before :func:`resolve`'s
    transaction, which locks it first."""
    return session.scalar(select(Storm.key).where(Storm.id == storm_id))


def resolve(
    session: Session, storm_id: int, key: str, *, action: str, actor: str,
    via: dict[str, Any], now: datetime, shown: int | None = None,
) -> Resolved:  # fmt: skip
    """Decide an open storm. Raises :class:`NotFound`, :class:`AlreadyResolved`,
    :class:`Changed` (``shown`` is not the held count) or :class:`SelfInvolved`; the caller's
    transaction must then be rolled back."""
    if action not in ACTIONS:
        raise ValueError(f"unknown storm action {action!r}")
    lock(session, [key], now)
    guard = [STORMS.c.id == storm_id, STORMS.c.key == key, STORMS.c.status == OPEN]
    if shown is not None:
        guard.append(STORMS.c.held == shown)
    values = {"status": ACTIONS[action], "resolved_by": actor[:64], "resolved_at": now,
              "version": STORMS.c.version + 1}  # fmt: skip
    moved = session.connection().execute(update(STORMS).where(*guard).values(values)).rowcount
    storm = session.get(Storm, storm_id, populate_existing=True)
    if storm is None:
        raise NotFound(str(storm_id))
    if not moved:
        if storm.status != OPEN:
            raise AlreadyResolved(storm)
        raise Changed(shown or 0, storm.held)
    users = held_users(session, storm_id)
    if actor in users:
        raise SelfInvolved(actor)
    ids = list(session.scalars(
        select(StormAlert.alert_id).where(StormAlert.storm_id == storm_id)
        .order_by(StormAlert.alert_id)
    ))  # fmt: skip
    locked = lock_many(session, ids)
    held = [locked[i] for i in ids if i in locked and locked[i].status == "held"]
    event = Event(_EVENTS[action], actor=actor)
    leader = None
    if action == "escalate" and held:
        leader, others = held[0], [a.id for a in held[1:]]
        if others:
            # One escalation for the group: the others (and any alert grouped under them)
            # follow the first one's conversation, as a burst of one person's alerts does.
            session.execute(
                update(Alert)
                .where(or_(Alert.id.in_(others), Alert.parent_id.in_(others)))
                .values(parent_id=leader.id)
                .execution_options(synchronize_session=False)
            )
        apply_event(session, leader, event, now=now, audit_details={"storm_id": storm_id})
    else:
        counter = metrics.STORM_RELEASED if action == "release" else metrics.STORM_DISCARDED
        for alert in held:
            apply_event(session, alert, event, now=now, audit_details={"storm_id": storm_id})
            counter.labels(alert.kind).inc()
    storm.escalated_alert_id = leader.id if leader is not None else None
    audit(
        session, action=f"storm.{ACTIONS[action]}", actor=actor, alert_id=None,
        details={"storm": storm.id, "detection": storm.key, "alerts": len(held),
                 "users": users, **({"escalated_alert": leader.id} if leader else {}), **via},
        at=now,
    )  # fmt: skip
    queue_update(session, storm.id, storm.version)
    return Resolved(storm.id, storm.status, [a.id for a in held], storm.escalated_alert_id)


def list_storms(session: Session, *, include_all: bool = False, limit: int = 100) -> list[Storm]:
    q = select(Storm).order_by(Storm.id.desc()).limit(limit)
    if not include_all:
        q = q.where(Storm.status == OPEN)
    return list(session.scalars(q))


def to_public(storm: Storm, users: list[str], now: datetime) -> dict[str, Any]:
    def iso(v: datetime | None) -> str | None:
        return None if v is None else v.isoformat()

    return {
        "id": storm.id, "kind": storm.kind, "source": storm.source, "status": storm.status,
        "people_dmed": storm.people, "held": storm.held, "held_people": len(users),
        "users": users, "limit": {"max_people": storm.max_people,
                                  "window_seconds": storm.window},
        "open": storm.status == OPEN, "opened_at": iso(storm.opened_at),
        "last_at": iso(storm.last_at), "escalated_alert_id": storm.escalated_alert_id,
        "resolved_by": storm.resolved_by, "resolved_at": iso(storm.resolved_at),
    }  # fmt: skip
