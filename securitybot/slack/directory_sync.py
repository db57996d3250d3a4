"""Know the workspace's people before a storm (issue 27): users.list into the people table.

A full sync reads every member with users.list (Tier 2, about 20 pages a minute, up to 1,000
people a page) at start, in the background, and daily; ``user_change`` and ``team_join``
events keep it current in between. Deactivated members (``deleted: true``) are kept as such,
so their alerts escalate as they always did. users.lookupByEmail stays the fallback for
someone who joined since the last sync on a replica that did not receive the event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncApp

from securitybot.slack.gateway import SlackGateway, SlackPermanentError, SlackRetryLater

logger = logging.getLogger(__name__)

# The full sync runs this often on each process (its in-memory people are its own).
EVERY = 86400.0


async def sync(gateway: SlackGateway) -> int | None:
    """One full sync, logged; the number of people read, or None if Slack refused it (the
    people known so far keep serving, and lookups fall back to users.lookupByEmail)."""
    started = time.monotonic()
    try:
        count = await gateway.sync_directory()
    except (SlackRetryLater, SlackPermanentError) as exc:
        logger.warning("Slack directory sync (users.list) failed: %s; trying again at the "
                       "next sync", exc)  # fmt: skip
        return None
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("Slack directory sync (users.list) failed")
        return None
    logger.info("Slack directory: %s people (users.list) in %.1f s", count,
                time.monotonic() - started)  # fmt: skip
    return count


def register(app: AsyncApp, gateway: SlackGateway) -> None:
    """Bolt listeners for the events that change the directory (slack-manifest.yaml subscribes
    to both; the user object in each is the one users.list returns)."""

    async def learn(event: dict[str, Any]) -> None:
        user = event.get("user")
        if isinstance(user, dict):
            gateway.learn_users([user])

    # https://docs.slack.dev/reference/events/user_change: a member's data changed (their
    # profile, their email, deactivated or reactivated).
    app.event("user_change")(learn)
    # https://docs.slack.dev/reference/events/team_join: a new member joined the workspace.
    app.event("team_join")(learn)
