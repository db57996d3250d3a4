"""``/securitybot status`` and ``/securitybot test``: what anyone may ask about themselves."""

from __future__ import annotations

from sqlalchemy import select

from securitybot.config import PolicyConfig
from securitybot.i18n import ENGLISH, N_, Translator
from securitybot.ingest.schema import AlertIn
from securitybot.ingest.service import ingest_alert
from securitybot.kinds import KindRegistry
from securitybot.slack import mrkdwn as md
from securitybot.slack.dates import slack_date
from securitybot.store.db import Database
from securitybot.store.models import Alert, utcnow

OPEN = ("new", "awaiting_ack", "awaiting_2fa", "escalated", "triaging")
TEST_SOURCE = "slack_test"  # the ingest source of test alerts, so they are easy to tell apart
TEST_TITLE = "Securitybot test alert (you asked for it with /securitybot test)"

WAITING = {
    "new": N_("being looked up"),
    "awaiting_ack": N_("waiting for your answer in our DM"),
    "awaiting_2fa": N_("waiting for you to approve the Duo push"),
    "escalated": N_("with the security team"),
    "triaging": N_("with the security team"),
}


def open_alerts(db: Database, user_id: str, limit: int = 20) -> list[Alert]:
    with db.read() as session:
        return list(
            session.scalars(
                select(Alert)
                .where(Alert.user_id == user_id, Alert.status.in_(OPEN))
                .order_by(Alert.id.desc())
                .limit(limit)
            )
        )


def status(db: Database, user_id: str, t: Translator = ENGLISH) -> str:
    _ = t.gettext
    alerts = open_alerts(db, user_id)
    if not alerts:
        return _("You have no open alerts. 🎉")
    lines = [
        f"• #{a.id} {md.inline(a.title, 150)} ({slack_date(a.occurred_at or a.created_at)}): "
        f"{_(WAITING[a.status]) if a.status in WAITING else a.status}"
        for a in alerts
    ]
    return "\n".join([_("*Your open alerts*"), *lines])


def send_test(
    db: Database, user_id: str, kinds: KindRegistry, policy: PolicyConfig,
    t: Translator = ENGLISH,
) -> str:  # fmt: skip
    """Ingest a harmless alert about the caller: it runs the whole DM and Duo flow.

    One per person per minute (the dedup key), so the command cannot be used to flood anyone.
    """
    now = utcnow()
    payload = AlertIn(
        kind="default", user=user_id, title=TEST_TITLE,
        description="This is only a test: answer it as you would a real alert.",
        dedup_key=f"test:{user_id}:{now:%Y%m%d%H%M}", details={"test": "true"},
    )  # fmt: skip
    result = ingest_alert(db, payload, source=TEST_SOURCE, kinds=kinds, policy=policy)
    if not result.created:
        return t.gettext("You already asked for a test alert this minute; look for my DM.")
    return t.gettext(
        "Test alert #{alert_id} is on its way: I'll DM you in a moment, as I would for a real "
        "alert. Answer it (a Duo push follows a yes) to see the whole flow."
    ).format(alert_id=result.alert.id)
