"""Applying an event to an alert by id, in its own transaction, with a retry on races."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from securitybot.domain import Event
from securitybot.flows.transitions import Applied, apply_event, load_for_update
from securitybot.flows.write_retry import retrying
from securitybot.store.db import Database


def apply_by_id(
    db: Database,
    alert_id: int,
    event: Event,
    *,
    also_set: dict[str, Any] | None = None,
    audit_details: dict[str, Any] | None = None,
    priority: bool = False,
) -> Applied | None:
    """None when the alert does not exist. Runs again if another writer raced us.
    ``priority``: someone is waiting on this verdict (Database.write)."""

    def work(session: Session) -> Applied | None:
        alert = load_for_update(session, alert_id)
        if alert is None:
            return None
        return apply_event(session, alert, event, also_set=also_set, audit_details=audit_details)

    return retrying(db, work, priority=priority)
