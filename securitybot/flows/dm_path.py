"""What the DM path's batch work (``dm_batch``) shares with the rest of the flows: the
checks that settle a new alert before any grouping, attaching an alert to its group's
conversation, and what a DM shows (the transaction that re-runs when it lost a race is
``write_retry.retrying``).

Every state change still goes through ``apply_event`` (a conditional UPDATE on the version,
audited); a lost race re-runs the whole transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from securitybot.domain import Event, EventType
from securitybot.flows import exemptions, snoozes, suppressions
from securitybot.flows.transitions import apply_event
from securitybot.slack.gateway import SlackUser
from securitybot.store import alerts as alert_store
from securitybot.store.models import Alert
from securitybot.store.outbox import enqueue


def settled_before_grouping(
    session: Session, alert: Alert, ids: list[str | None], user: SlackUser | None,
    *, rules: bool = True, exempt: bool = True, snoozed: bool = True,
) -> bool:  # fmt: skip
    """What settles a new alert before any grouping, in order: a suppression rule, an
    exemption, nobody (or a deactivated person or a bot) in Slack, a snooze. True if one did.
    ``rules``, ``exempt``, ``snoozed`` False: none is in force, so that check is skipped."""
    found = {"user_id": user.id, "user_name": user.name} if user else {}
    if rules and suppressions.suppress(session, alert, ids, found) is not None:
        return True  # closed with the rule named; counted and summarised
    exemption = exemptions.find(session, ids) if exempt else None
    if exemption is not None:
        apply_event(
            session, alert, Event(EventType.USER_EXEMPT, comment=exemption.reason or None),
            also_set=found, audit_details={"exemption_id": exemption.id},
        )  # fmt: skip
        return True
    if user is None or user.deleted or user.is_bot:
        why = "not found in Slack" if user is None else "deactivated or a bot"
        apply_event(session, alert, Event(EventType.USER_UNKNOWN, comment=why))
        return True
    if not user.reachable:
        # Enterprise Grid: in the org, but in no workspace the app was added to.
        where = ", ".join(user.teams) or "no workspace"
        apply_event(session, alert, Event(EventType.USER_NOT_REACHABLE, comment=f"in {where}"),
                    also_set=found)  # fmt: skip
        return True
    snooze = snoozes.find_active(session, alert, user_id=user.id) if snoozed else None
    if snooze is not None:
        apply_event(
            session, alert, Event(EventType.SNOOZE_MATCHED), also_set=found,
            audit_details={"snooze_id": snooze.id, "snoozed_by_alert": snooze.source_alert_id},
        )  # fmt: skip
        return True
    return False


def attach_to_parent(
    session: Session, alert: Alert, parent: Alert, user_id: str, user_name: str
) -> None:
    """Make ``alert`` part of ``parent``'s conversation (both row-locked by the caller)."""
    session.execute(
        update(Alert)
        .where(Alert.id == alert.id)
        .values(parent_id=parent.id, user_id=user_id, user_name=user_name)
        .execution_options(synchronize_session=False)
    )
    # Already written: recorded as committed so the ORM does not write the row a second time.
    for key, value in (("parent_id", parent.id), ("user_id", user_id), ("user_name", user_name)):
        set_committed_value(alert, key, value)
    alert_store.audit(session, alert_id=alert.id, actor="system", action="alert.grouped",
                      details={"parent_id": parent.id}, subject_user=user_id)  # fmt: skip
    if parent.status == "awaiting_ack":
        # The DM is already out: join its clock and re-render it with the new count.
        apply_event(
            session, alert, Event(EventType.DM_SENT), mirrored_from=parent.id,
            also_set={"dm_channel": parent.dm_channel, "dm_ts": parent.dm_ts,
                      "respond_by": parent.respond_by, "remind_at": None},
        )  # fmt: skip
        enqueue(session, effect="refresh_dm", alert_id=parent.id,
                idempotency_key=f"refresh:{parent.id}:{alert.id}")  # fmt: skip


@dataclass(frozen=True)
class DmContext:
    alert: Alert
    greet: bool  # the first DM a person ever gets from the bot explains why it is asking
    grouped: list[Alert]
    marked: bool  # the job's delivery mark was committed with this read
