"""Who hears about an anomaly, and how repeats collapse into one updated Slack message.

Routing follows the org's ``notify`` preference (primary owner, security admins, a channel) with
the Slack ids from ``aer.contacts``. A person holding several roles is one recipient. Each
recipient has at most one open message per (org, user, anomaly type) and window: a repeat bumps
its count and the message is edited (chat.update) instead of a new one being posted, so an
attack that trips a rule a thousand times is one message saying "x1000", not a flood.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from securitybot.aer import store
from securitybot.aer.decide import NotifyTargets
from securitybot.aer.reason import Reason, shown
from securitybot.config import AerContacts
from securitybot.i18n import ENGLISH, Translator
from securitybot.slack import mrkdwn as md
from securitybot.store.aer_models import AerNotification

NOTIFY_EFFECT = "aer_notify"


def recipients(targets: NotifyTargets, org: str, contacts: Mapping[str, AerContacts]) -> list[str]:
    """Slack user or channel ids, each once, in a stable order."""
    who = contacts.get(org) or contacts.get("*")
    out: list[str] = []
    if who is not None:
        if targets.primary_owner and who.primary_owner:
            out.append(who.primary_owner)
        if targets.security_admins:
            out.extend(who.security_admins)
    if targets.channel:
        out.append(targets.channel)
    return list(dict.fromkeys(out))


def consolidate(
    session: Session, *, org: str, user: str, kind: str, targets: list[str], reason: Reason,
    now: datetime, window: float,
) -> list[dict[str, Any]]:  # fmt: skip
    """Count the anomaly into each recipient's open message; the outbox rows to (re)render.

    ``reason`` is kept in English (``last_reason``) and as a message (``last_reason_i18n``).
    The idempotency key carries the count, so a burst enqueues one job per repeat but each job
    renders whatever the count is when it runs: the message converges on the latest total.
    """
    since = now - timedelta(seconds=window)
    jobs = []
    for recipient in targets:
        nid, count = store.bump_notification(
            session, org, user, kind, recipient, reason.english(), now, since,
            reason_i18n=reason.to_json(),
        )  # fmt: skip
        jobs.append(
            {
                "effect": NOTIFY_EFFECT,
                "payload": {"notification_id": nid},
                "idempotency_key": f"aer-notify:{nid}:{count}",
            }
        )
    return jobs


def render(row: AerNotification, t: Translator = ENGLISH) -> str:
    """The notice's mrkdwn ``text`` in ``t``'s language (the team's, or the person's it is sent
    to); every field came from Slack's audit or event stream."""
    fields = {"type": md.inline(row.type, 64), "user": md.user(row.user_id),
              "org": md.code(row.org, 66)}  # fmt: skip
    if row.count > 1:
        head = t.gettext(
            "Anomaly Event Response: *{type}* for {user} in org {org} (x{count} since {time} UTC)."
        ).format(**fields, count=row.count, time=f"{row.first_at:%H:%M}")
    else:
        head = t.gettext("Anomaly Event Response: *{type}* for {user} in org {org}.").format(
            **fields
        )
    # Rows written before the reason was kept as a message show their English.
    reason = shown(row.last_reason, row.last_reason_i18n, t)
    latest = t.gettext("Latest: {reason}").format(reason=reason)
    return md.fallback(f":rotating_light: {head}\n{latest}")
