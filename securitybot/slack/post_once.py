"""A Slack post made at most once per outbox job, even when a run's outcome is lost.

The job notes in the database that it is about to post; a later run of a job that got that far
first looks for its own message (message metadata tagged with ``key``) in the channel's recent
history, and takes that message instead of posting again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from securitybot.outbox.jobs import Job
from securitybot.slack.gateway import SlackGateway, SlackPermanentError, SlackRetryLater
from securitybot.store.db import Database
from securitybot.store.outbox import mark_delivery_started

logger = logging.getLogger(__name__)

# How far before a job's creation a retry looks for the post an earlier run made (clock skew
# between us and Slack; the post itself can only be newer than the job).
HISTORY_MARGIN = 60.0


def _mark(db: Database, job_id: int, started: bool) -> None:
    with db.write() as session:
        mark_delivery_started(session, job_id, started=started)


@dataclass(frozen=True)
class Delivered:
    ts: str
    # Found in the channel's history, posted by an earlier run: it shows what that run
    # rendered, which may be older than ``text``.
    earlier: bool = False


async def post_once(
    db: Database, slack: SlackGateway, job: Job, channel: str, text: str,
    blocks: list[dict[str, Any]] | None, key: dict[str, Any], *, marked: bool = False,
) -> str:  # fmt: skip
    """Post tagged with ``key``, unless an earlier run of ``job`` already did: then that
    post's ts (``deliver_once`` also says which of the two it was)."""
    return (await deliver_once(db, slack, job, channel, text, blocks, key, marked=marked)).ts


async def deliver_once(
    db: Database, slack: SlackGateway, job: Job, channel: str, text: str,
    blocks: list[dict[str, Any]] | None, key: dict[str, Any], *, marked: bool = False,
) -> Delivered:  # fmt: skip
    """Post tagged with ``key``, unless an earlier run of ``job`` already did: then that
    post, marked ``earlier`` (its content is whatever that run posted, not ``text``).

    Only a run that follows one which got as far as posting asks Slack: conversations.history
    is Tier 3 (about 50 calls a minute), while a database outage can fail hundreds of jobs
    before they post. The mark costs one small write per post (none here when ``marked``: the
    caller committed it with its own reads).
    """
    if not job.delivery_started:
        if not marked:
            await asyncio.to_thread(_mark, db, job.id, True)
    else:
        oldest = job.created_epoch - HISTORY_MARGIN
        try:
            found = await slack.find_delivery(channel, key, oldest=oldest)
        except SlackRetryLater as exc:
            exc.spends_attempt = False  # the post was not tried: no attempt used up
            raise
        except SlackPermanentError as exc:
            # e.g. missing_scope: a possible duplicate beats a security message never sent.
            logger.warning("%s: cannot look for an earlier post in %s (%s); posting", key,
                           channel, exc)  # fmt: skip
            found = None
        if found is not None:
            logger.info("%s was already posted (ts %s); not posting it again", key, found)
            return Delivered(found, earlier=True)
    try:
        return Delivered(await slack.post(channel, text, blocks,
                                          delivery={**key, "job_id": job.id}))  # fmt: skip
    except (SlackRetryLater, SlackPermanentError) as exc:
        if isinstance(exc, SlackPermanentError) or exc.refused:
            # Slack said it posted nothing: the next run posts without a history lookup
            # (Tier 3, ~50 a minute, and needed least while Slack is rate limiting us).
            await asyncio.to_thread(_mark, db, job.id, False)
        raise
