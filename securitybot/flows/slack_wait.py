"""Alerts that arrive before Slack is configured: stored, counted, and DM'd once it is.

Without Slack there is nobody to ask, and escalating to "no channel" would only kill the job.
So ``start_conversation`` puts its job back to wait (not a failure: no attempt is spent, nothing
dies), and a service started with Slack configured wakes every waiting job at once instead of
leaving them to their next check.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from securitybot.ingest.service import START_EFFECT
from securitybot.store.db import Database
from securitybot.store.models import Alert, Outbox, utcnow

# Slack settings are read at start-up, and start-up wakes the waiting jobs, so this re-check
# only has to be cheap, not quick.
SLACK_WAIT = timedelta(minutes=5)


def wake_jobs_waiting_for_slack(db: Database) -> int:
    """Make every pending ``start_conversation`` of a still-new alert due now; returns how many."""
    now = utcnow()
    waiting_alerts = select(Alert.id).where(Alert.status == "new")
    with db.write() as session:
        result = session.execute(
            update(Outbox)
            .where(
                Outbox.effect == START_EFFECT,
                Outbox.status == "pending",
                Outbox.next_attempt_at > now,
                Outbox.alert_id.in_(waiting_alerts),
            )
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)
