"""Messages deleted or edited in an alert's DM.

Deleting the bot's question, or the reply that answered it, is never an answer: whoever holds
the session may be hiding the conversation from the real employee, so the open alert escalates
at once (``dm_deleted``). Editing the reply never changes the answer already given; the edit is
only recorded, so the team sees both versions. The Slack events carry no author for a deletion,
so matching is by message: the question is the alert's ``dm_ts`` in ``dm_channel``, a reply is
the ``reply_ts`` recorded with the text answer it gave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from securitybot.domain import Event, EventType
from securitybot.flows.events import apply_by_id
from securitybot.flows.transitions import Applied
from securitybot.i18n import ENGLISH, Translator
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog

QUESTION = "question"
REPLY = "reply"
# Audit actions of a text answer; their details carry the reply's ts ("reply_ts").
ANSWER_ACTIONS = ("alert.user_confirmed", "alert.user_denied")
DELETED = "alert.dm_deleted"
DELETED_LATE = "event_ignored.dm_deleted"  # the alert was already answered or closed
EDITED = "answer.reply_edited"


@dataclass(frozen=True)
class DmMessage:
    alert_id: int  # the conversation's alert (a group's parent)
    what: str  # QUESTION or REPLY


def find(session: Session, channel: str, ts: str) -> DmMessage | None:
    """Which alert's question or answering reply the message ``ts`` in ``channel`` was."""
    base = select(Alert.id).where(Alert.dm_channel == channel, Alert.parent_id.is_(None))
    question = session.scalars(base.where(Alert.dm_ts == ts).order_by(Alert.id).limit(1)).first()
    if question is not None:
        return DmMessage(question, QUESTION)
    answers = session.execute(
        select(AuditLog.alert_id, AuditLog.details)
        .join(Alert, AuditLog.alert_id == Alert.id)
        .where(
            Alert.dm_channel == channel,
            Alert.parent_id.is_(None),
            AuditLog.action.in_(ANSWER_ACTIONS),
        )
        .order_by(AuditLog.id)
    )
    for alert_id, details in answers:
        if alert_id is not None and (details or {}).get("reply_ts") == ts:
            return DmMessage(int(alert_id), REPLY)
    return None


def slack_time(ts: str | None) -> datetime | None:
    """A Slack message ts ("1358878749.000002") as a UTC time."""
    try:
        return datetime.fromtimestamp(float(ts or ""), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def message_deleted(
    db: Database, channel: str, deleted_ts: str, event_ts: str | None
) -> Applied | None:
    """Escalate the open alert whose question or reply was deleted; None if it was neither.

    Grouped alerts follow their parent as for any answer. An alert already answered or closed
    does not change, but the deletion is still in its audit trail.
    """
    with db.read() as session:
        found = find(session, channel, deleted_ts)
    if found is None:
        return None
    details: dict[str, Any] = {"deleted": found.what, "deleted_ts": deleted_ts}
    when = slack_time(event_ts)
    if when is not None:
        details["deleted_at"] = when.isoformat()
    return apply_by_id(db, found.alert_id, Event(EventType.DM_DELETED), audit_details=details)


def reply_edited(db: Database, channel: str, ts: str, user: str, text: str,
                 previous: str | None) -> int | None:  # fmt: skip
    """Record that ``user`` edited the reply ``ts``; the answer it gave stands. Returns the
    alert id, or None when the edited message answered nothing (chatter, the bot's own edits)."""
    with db.write() as session:
        found = find(session, channel, ts)
        if found is None or found.what != REPLY:
            return None
        alert = alert_store.get(session, found.alert_id)
        if alert is None or alert.user_id != user:
            return None
        alert_store.audit(
            session, alert_id=alert.id, actor=user, action=EDITED,
            from_status=alert.status, to_status=alert.status, subject_user=alert.user_id,
            details={"reply_ts": ts, "text": text[:500], "previous_text": (previous or "")[:500]},
        )  # fmt: skip
        return alert.id


def timeline_entry(action: str, details: dict[str, Any], t: Translator = ENGLISH) -> str | None:
    """How a deletion or edit reads in the escalation timeline (in ``t``'s language); None for
    other actions."""
    _ = t.gettext
    if action in (DELETED, DELETED_LATE):
        question = details.get("deleted") == QUESTION
        posted = slack_time(details.get("deleted_ts"))
        deleted_at = details.get("deleted_at")
        at = f"{datetime.fromisoformat(str(deleted_at)):%H:%M:%S}" if deleted_at else ""
        what = _("The bot's question") if question else _("The user's reply")
        if posted:
            what = _("{what} (posted {time} UTC)").format(what=what, time=f"{posted:%H:%M:%S}")
        if action == DELETED:
            text = (_("{what} was deleted at {time} UTC from the DM") if at
                    else _("{what} was deleted from the DM"))  # fmt: skip
        else:
            text = (_("{what} was deleted at {time} UTC from the DM after the alert was decided "
                      "(no change)") if at
                    else _("{what} was deleted from the DM after the alert was decided "
                           "(no change)"))  # fmt: skip
        return text.format(what=what, time=at)
    if action == EDITED:
        new = str(details.get("text") or "")[:200]
        return _("User edited their reply; the answer stands. Now reads: “{text}”").format(text=new)
    return None
