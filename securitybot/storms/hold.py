"""Where the storm guard joins the DM path: between deciding an alert's person and asking for
its DM, in the same transaction (``flows.dm_batch.settle_people``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from securitybot.domain import Event, EventType
from securitybot.flows.transitions import apply_event
from securitybot.paging import hooks as paging
from securitybot.store.models import Alert, utcnow
from securitybot.storms.guard import config_of, split


def storm_group_key(storm_id: int) -> str:
    """The storm's paging group: its page's dedup key is ``securitybot-storm-<id>``."""
    return str(storm_id)


def storm_guard(
    session: Session, alerts: Sequence[Alert], found: dict[int, dict[str, Any]]
) -> list[Alert]:
    """The ``alerts`` that may be DMed now; the others are held (``storm_held``, audited with
    their storm) and linked to their storm's one page when paging is configured."""
    cfg = config_of(session)
    if cfg is None or not alerts:
        return list(alerts)
    now = utcnow()
    users = {a.id: str(found[a.id]["user_id"]) for a in alerts}
    result = split(session, cfg, alerts, users, now)
    for alert, storm_id in result.held:
        apply_event(session, alert, Event(EventType.STORM_HELD), now=now,
                    also_set=found.get(alert.id), audit_details={"storm_id": storm_id})  # fmt: skip
        paging.request_page(session, alert, group_key=storm_group_key(storm_id))
    return result.admitted
