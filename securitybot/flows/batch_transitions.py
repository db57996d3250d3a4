"""One event applied to many alerts with set-based writes (the deadline sweep's hot path).

The same rules as ``transitions.apply_event``: the state machine decides each alert's change,
every UPDATE is still conditional on the version read (a raced alert fails the batch with
ConcurrentUpdate, and the caller retries alert by alert), every change and every ignored event
is audited, and effects go to the outbox in the same transaction. Only the round trips are
shared: one executemany per kind of UPDATE, one for the audit rows, one for the outbox rows, one
query for grouped alerts, instead of about six statements per alert.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, text, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from securitybot.domain import Event, transition
from securitybot.flows import webhooks
from securitybot.flows.transitions import (
    ConcurrentUpdate,
    _mirror_to_group,
    _observe,
    effect_row,
    log_change,
    new_values,
    policy_of,
    state_of,
)
from securitybot.paging import hooks as paging
from securitybot.store import alerts as alert_store
from securitybot.store.models import Alert
from securitybot.store.outbox import enqueue_many

logger = logging.getLogger(__name__)
ALERTS = cast(Table, Alert.__table__)
_OPEN_CHILDREN = text(
    "SELECT DISTINCT parent_id FROM alerts WHERE parent_id IN :parents "
    "AND status NOT IN ('resolved', 'closed')"
).bindparams(bindparam("parents", expanding=True))


@functools.cache
def _update_for(columns: tuple[str, ...]) -> Any:
    """The guarded UPDATE that writes ``columns`` (built once per shape of change)."""
    return (
        update(ALERTS)
        .where(ALERTS.c.id == bindparam("b_id"), ALERTS.c.version == bindparam("b_version"))
        .values({c: bindparam(c) for c in columns})
    )


def apply_to_many(
    session: Session, alerts: Sequence[Alert], event: Event, now: datetime,
    *, also_set: Mapping[int, dict[str, Any]] | None = None,
) -> int:  # fmt: skip
    """Apply ``event`` to each of ``alerts`` (loaded, and locked where the store locks, by the
    caller) in the caller's transaction; returns how many changed. ``also_set`` holds each
    alert's adapter facts by id (as ``apply_event``'s ``also_set``)."""
    also_set = also_set or {}
    audits: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    changed: list[tuple[Alert, str, dict[str, Any], Any]] = []
    for alert in alerts:
        t = transition(state_of(alert), event, now, policy_of(alert))
        details: dict[str, Any] = {"note": t.note}
        if event.comment:
            details["comment"] = event.comment
        action = f"alert.{event.type.value}" if t.changed else f"event_ignored.{event.type.value}"
        to_status = t.state.status.value if t.changed else alert.status
        audits.append({"alert_id": alert.id, "actor": event.actor, "action": action,
                       "from_status": alert.status, "to_status": to_status, "details": details,
                       "org": None, "subject_user": alert.user_id, "created_at": now})  # fmt: skip
        if not t.changed:
            continue
        values = new_values(alert, t, now, also_set.get(alert.id))
        shape = tuple(sorted(values))
        shapes.setdefault(shape, []).append(
            {"b_id": alert.id, "b_version": alert.version, **values}
        )
        changed.append((alert, alert.status, values, t))
    conn = session.connection()
    for columns, rows in shapes.items():
        if conn.execute(_update_for(columns), rows).rowcount != len(rows):
            raise ConcurrentUpdate("an alert of the batch changed concurrently")
    previous = {alert.id: alert.updated_at for alert, *_ in changed}
    for alert, _from, values, t in changed:
        for key, value in values.items():
            set_committed_value(alert, key, value)  # written already: no second UPDATE
        jobs.extend(
            effect_row(alert.id, alert.version, idx, effect) for idx, effect in enumerate(t.effects)
        )
    alert_store.audit_many(session, audits)
    enqueue_many(session, jobs)
    for alert, from_status, _values, t in changed:
        log_change(alert, from_status, t.state.status.value, event)
        _observe(alert, from_status, event, now, previous[alert.id])
        webhooks.enqueue_for(
            session, alert, webhooks.state_events(from_status, alert, event.type.value)
        )
        paging.on_transition(session, alert, from_status, event.type.value)
    parents = [alert.id for alert, *_ in changed]
    with_children = set(conn.execute(_OPEN_CHILDREN, {"parents": parents}).scalars()) if (
        parents
    ) else set()  # fmt: skip
    for alert, *_ in changed:
        if alert.id in with_children:  # grouped alerts follow their parent (rare: per alert)
            _mirror_to_group(session, alert, event, now, also_set.get(alert.id) or {})
    return len(changed)
