"""Small decisions of the Duo push handlers (``flows/conversation.py``): which username to push
to, whether a push is still worth polling, and dropping an early poll nobody will apply."""

from __future__ import annotations

import asyncio
import contextlib

from securitybot.slack.gateway import SlackUser
from securitybot.store.models import Alert
from securitybot.verify.base import PushPoll


def duo_username(mode: str, user: SlackUser | None, alert: Alert) -> str:
    email = (user.email if user else None) or (alert.user_given if "@" in alert.user_given else "")
    if mode == "email" and email:
        return email
    if mode == "slack_name" and user is not None:
        return user.name
    if email:
        return email.split("@", 1)[0]
    return user.name if user else alert.user_given


def listening_to_duo(alert: Alert) -> bool:
    """Whether the alert's push is still worth polling."""
    if alert.status == "awaiting_2fa":
        return True
    # Escalated before Duo answered (e.g. at the deadline): keep listening until it does (Duo
    # times a push out after a minute), so a late answer, above all a fraud report, still
    # reaches the team's timeline.
    return alert.status in ("escalated", "triaging") and alert.duo_result is None


async def let_go(early: asyncio.Future[PushPoll] | None) -> None:
    """Stop an early poll nobody will apply (the record found the alert moved on, or failed):
    its answer stays with Duo for whoever polls the push next."""
    if early is None:
        return
    early.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await early
