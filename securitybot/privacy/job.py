"""The daily purge as the scheduler runs it: on one replica at a time (a lease in the database),
skipped by a replica whose clock fires after another already did today's run."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from securitybot.config import RetentionConfig
from securitybot.privacy import purge
from securitybot.privacy.identities import held_people_ids
from securitybot.privacy.lease import Lease
from securitybot.privacy.retention import Policy, policy
from securitybot.store.db import Database
from securitybot.store.models import utcnow

logger = logging.getLogger(__name__)

JOB = "retention_purge"
# Renewed after every batch (milliseconds each): only a replica that died lets it run out.
LEASE_TTL = timedelta(minutes=5)
# A run that finished less than this ago was today's: another replica's cron fired first.
ONCE_A_DAY = timedelta(hours=20)


def current_policy(db: Database, config: RetentionConfig, now: datetime | None = None) -> Policy:
    with db.read() as session:
        extra = held_people_ids(session, config.hold.people)
    return policy(config, now or utcnow(), extra_people=extra)


def run_daily(db: Database, config: RetentionConfig, *, owner: str | None = None,
              force: bool = False) -> purge.Report | None:  # fmt: skip
    """Purge once if this replica wins the lease; None if another replica has it (or did it
    today, unless ``force``: an operator's ``securitybot purge``)."""
    if not config.enabled:
        return None
    lease = Lease(db, JOB, LEASE_TTL, owner=owner)
    since = None if force else utcnow() - ONCE_A_DAY
    if not lease.acquire(unless_done_since=since):
        logger.info("retention purge: another replica holds or already ran it today")
        return None
    done = False
    try:
        report = purge.run(db, current_policy(db, config), batch_size=config.batch_size,
                           pause=config.pause, share=config.share,
                           batch_time=config.batch_time, lease=lease)  # fmt: skip
        done = report.complete
    finally:
        lease.release(done=done)
    summary = ", ".join(f"{c} {n}" for c, n in sorted(report.categories.items()))
    logger.info("retention purge: %s", summary or "nothing to purge")
    return report
