"""The database work of the DM path, one transaction per step (issue #15).

A new alert goes from `new` to its DM in two handlers; each used to open a session per check.
Here each handler's work between its Slack calls is one transaction:

- ``settle_person``: once Slack said who the person is, the suppression, exemption and snooze
  checks, the group join and the resulting event, under the alert's row lock;
- ``prepare_dm``: the alert, whether to greet, its grouped alerts, and the delivery mark that
  must be committed before the post;
- ``finish_dm``: ``dm_sent`` and, if alerts joined the group while the DM was on its way, the
  re-render.

Every state change still goes through ``apply_event`` (a conditional UPDATE on the version,
audited); a lost race re-runs the whole transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from securitybot.domain import Event, EventType
from securitybot.flows import exemptions, snoozes, suppressions
from securitybot.flows.transitions import ConcurrentUpdate, apply_event, load_for_update
from securitybot.slack.gateway import SlackUser
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert
from securitybot.store.outbox import enqueue, mark_delivery_started

T = TypeVar("T")
ATTEMPTS = 5


def retrying(db: Database, work: Callable[[Session], T]) -> T:
    """``work`` in one write transaction, run again from scratch if another writer raced it
    (or PostgreSQL broke a lock cycle by aborting it: an alert's writers mostly lock it, then
    its older group parent, but mirroring to a group locks the other way round)."""
    for attempt in range(ATTEMPTS):
        try:
            with db.write() as session:
                return work(session)
        except (ConcurrentUpdate, DBAPIError) as exc:
            lost_race = isinstance(exc, ConcurrentUpdate) or _deadlock(exc)
            if not lost_race or attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _deadlock(exc: Exception) -> bool:
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == "40P01"


def settle_person(
    db: Database, alert_id: int, ids: list[str | None], user: SlackUser | None,
    group_window: timedelta,
) -> None:  # fmt: skip
    """What a new alert becomes once Slack answered who ``user`` is: suppressed, exempt,
    unknown, snoozed, grouped under an open alert, or resolved (which queues the DM)."""
    found = {"user_id": user.id, "user_name": user.name} if user else {}

    def work(session: Session) -> None:
        alert = load_for_update(session, alert_id)
        if alert is None or alert.status != "new":
            return
        if settled_before_grouping(session, alert, ids, user):
            return
        assert user is not None
        if join_group(session, alert, user.id, user.name, group_window, lock=db.is_postgres):
            return
        apply_event(session, alert, Event(EventType.USER_RESOLVED), also_set=found)

    retrying(db, work)


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
    snooze = snoozes.find_active(session, alert, user_id=user.id) if snoozed else None
    if snooze is not None:
        apply_event(
            session, alert, Event(EventType.SNOOZE_MATCHED), also_set=found,
            audit_details={"snooze_id": snooze.id, "snoozed_by_alert": snooze.source_alert_id},
        )  # fmt: skip
        return True
    return False


def join_group(
    session: Session, alert: Alert, user_id: str, user_name: str, window: timedelta, *, lock: bool
) -> bool:
    """A burst for the same user and kind becomes one conversation under the first alert.
    ``alert`` is row-locked by the caller; ``lock`` locks the parent too (PostgreSQL)."""
    q = alert_store.group_parent_query(alert, user_id, window)
    if lock:
        q = q.with_for_update()
    parent = session.scalars(q).first()
    if parent is None:
        return False
    attach_to_parent(session, alert, parent, user_id, user_name)
    return True


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


def prepare_dm(db: Database, alert_id: int, job_id: int, *, mark: bool) -> DmContext | None:
    """The alert to DM and what its message shows, read in one transaction that also commits
    the job's delivery mark (when ``mark``) before anything is posted. None: nothing to send."""
    with db.write() as session:
        alert = session.get(Alert, alert_id)
        if alert is None or alert.status != "new" or not alert.user_id:
            return None
        if alert.dm_ts:  # posted before a crash, not yet recorded as sent
            return DmContext(alert, greet=False, grouped=[], marked=False)
        grouped = list(
            session.scalars(select(Alert).where(Alert.parent_id == alert.id).order_by(Alert.id))
        )
        earlier = session.scalar(
            select(Alert.id)
            .where(Alert.user_id == alert.user_id, Alert.dm_ts.is_not(None), Alert.id != alert.id)
            .limit(1)
        )
        if mark:
            mark_delivery_started(session, job_id, started=True)
        return DmContext(alert, greet=earlier is None, grouped=grouped, marked=mark)


def finish_dm(db: Database, alert_id: int, also_set: dict[str, Any], shown: int) -> bool:
    """Record the DM as sent; when more than the ``shown`` grouped alerts exist by now (they
    joined while the DM was on its way), queue its re-render in the same transaction. True if
    a re-render was queued."""

    def work(session: Session) -> bool:
        alert = load_for_update(session, alert_id)
        if alert is None:
            return False
        apply_event(session, alert, Event(EventType.DM_SENT), also_set=also_set)
        grouped = session.scalar(
            select(func.count()).select_from(Alert).where(Alert.parent_id == alert_id)
        )
        if grouped == shown:
            return False
        enqueue(session, effect="refresh_dm", alert_id=alert_id,
                idempotency_key=f"refresh:{alert_id}:sent:{shown}")  # fmt: skip
        return True

    return retrying(db, work)
