"""The paging pass of the timer sweep: escalations whose claim clock ran out unclaimed
(paging.when: unclaimed_after_claim_timeout), and Opsgenie alerts with timeline steps not yet
noted. Every replica runs it; the outbox keys and the row locks make each step happen once."""

from __future__ import annotations

from datetime import datetime

from securitybot.paging.hooks import (
    PagingRules,
    due_unclaimed,
    notes_due,
    request_page,
    step_key,
)
from securitybot.store.db import Database
from securitybot.store.models import utcnow
from securitybot.store.outbox import enqueue


def sweep_paging(db: Database, rules: PagingRules, *, now: datetime | None = None) -> int:
    """Pages opened and note jobs queued."""
    if not rules.providers:
        return 0
    now = now or utcnow()
    changed = 0
    if rules.when == "unclaimed_after_claim_timeout":
        with db.write() as session:
            for alert in due_unclaimed(session, rules, now, postgres=db.is_postgres):
                changed += request_page(session, alert) is not None
    if "opsgenie" in rules.providers:
        with db.write() as session:
            for key, opener, newest in notes_due(session):
                enqueue(session, effect="page_notes", alert_id=opener,
                        payload={"provider": "opsgenie", "dedup_key": key, "through": newest},
                        idempotency_key=step_key("opsgenie", key, f"notes:{newest}"))  # fmt: skip
                changed += 1
    return changed
