"""The DM path's database work for a batch of alerts, one transaction per step (issue #15).

The steps take a whole batch of new alerts in one transaction each (a single job is a batch of
one), with the rules an alert would meet on its own:

- ``settle_people``: suppression, exemption, snooze, group join, then ``user_resolved`` (which
  queues the DM), decided in alert id order, so an alert joins an earlier alert of the same
  batch, or an older open one, exactly as it would have one by one. The batch's alerts and
  the older alerts they may join are locked together in one statement.
- ``prepare_dms``: the alerts to DM, who gets a greeting, their grouped alerts, and the
  delivery marks committed before anything is posted.
- ``finish_dms``: ``dm_sent`` for every posted DM, re-renders for groups that grew meanwhile,
  and the events of the DMs that failed.

Every state change is still a conditional UPDATE on the version read, audited, with its
effects queued in the same transaction (``batch_transitions.apply_to_many``, ``apply_event``);
a lost race re-runs the whole transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Integer, Table, bindparam, func, or_, select, union_all, update
from sqlalchemy.orm import Session

from securitybot.domain import Event, EventType
from securitybot.flows.batch_transitions import apply_to_many
from securitybot.flows.dm_path import DmContext, attach_to_parent, settled_before_grouping
from securitybot.flows.transitions import apply_event
from securitybot.flows.write_retry import retrying
from securitybot.outbox.jobs import Job
from securitybot.slack.gateway import SlackUser
from securitybot.store.db import Database
from securitybot.store.models import Alert, Exemption, Outbox, Snooze, UTCDateTime, utcnow
from securitybot.store.outbox import enqueue, enqueued, mark_done
from securitybot.store.planner import unindexed
from securitybot.store.suppression_models import SuppressionRule
from securitybot.storms.hold import storm_guard

OPEN = ("new", "awaiting_ack")
OUTBOX = cast(Table, Outbox.__table__)

# The hot statements, built once: a statement built per call costs more to construct and key
# for the statement cache than to run (the lists are expanding parameters, so the text stays
# cacheable whatever their length).
_IDS = bindparam("ids", type_=Integer(), expanding=True)
_LOCK = select(Alert).where(Alert.id.in_(_IDS)).order_by(Alert.id.desc())
_LOCK_MANY = {
    False: _LOCK.execution_options(populate_existing=True),
    True: _LOCK.with_for_update().execution_options(populate_existing=True),
}
_NOW = bindparam("now", type_=UTCDateTime())
_IN_FORCE = select(
    select(SuppressionRule.id)
    .where(SuppressionRule.revoked_at.is_(None), SuppressionRule.expires_at > _NOW)
    .exists(),
    select(Exemption.id).exists(),
    select(Snooze.id).where(Snooze.revoked_at.is_(None), Snooze.expires_at > _NOW).exists(),
)
# Only the person (and kind) may lead the planner: the rest filters the person's own alerts.
# SQLite led with ``parent_id IS NULL`` (every top-level alert) or, once ANALYZEd, with the
# ``id <`` range: on a store of 250,000 finished alerts each batch read them all, and
# ingest-to-DM went from 64 ms to 863 ms at p50 (tests/perf/test_group_join_plan.py).
_OPEN_OLDER = (
    Alert.kind.in_(bindparam("kinds", expanding=True)),
    unindexed(Alert.parent_id).is_(None),
    unindexed(Alert.status).in_(OPEN),
    unindexed(Alert.id) < bindparam("below"),
    Alert.id.not_in(bindparam("batch", expanding=True)),
    unindexed(Alert.created_at) >= bindparam("since", type_=UTCDateTime()),
)
# Two index lookups, not an OR: with ``user_id = ... OR user_given = ...`` the planner of a table
# nobody had ANALYZEd yet (a burst into a new deployment) filtered every top-level alert.
_POSSIBLE_PARENTS = union_all(
    select(Alert.id).where(Alert.user_given.in_(bindparam("givens", expanding=True)),
                           *_OPEN_OLDER),
    select(Alert.id).where(Alert.user_id.in_(bindparam("users", expanding=True)), *_OPEN_OLDER),
)  # fmt: skip
_CHILDREN = select(Alert).where(Alert.parent_id.in_(_IDS)).order_by(Alert.id)
_DMED_BEFORE = (
    select(Alert.user_id, func.min(Alert.id).label("low"), func.max(Alert.id).label("high"))
    .where(Alert.user_id.in_(bindparam("users", expanding=True)), Alert.dm_ts.is_not(None))
    .group_by(Alert.user_id)
)
_GROUP_SIZES = (
    select(Alert.parent_id, func.count()).where(Alert.parent_id.in_(_IDS)).group_by(Alert.parent_id)
)


@dataclass(frozen=True)
class Person:
    """What Slack said about the person of one alert (``user`` None: nobody found)."""

    alert_id: int
    ids: list[str | None]
    user: SlackUser | None
    # What the group query matches the alert on (set at ingest, never changed).
    kind: str
    user_given: str
    created_at: datetime


@dataclass
class _Candidate:
    """An alert another may join, as the group query sees it (updated as the batch decides)."""

    id: int
    kind: str
    user_given: str
    user_id: str | None
    created_at: datetime
    status: str
    parent_id: int | None

    @classmethod
    def of(cls, a: Alert) -> _Candidate:
        return cls(a.id, a.kind, a.user_given, a.user_id, a.created_at, a.status, a.parent_id)

    def takes(self, alert: Alert, user_id: str, window: timedelta) -> bool:
        return (
            self.id < alert.id
            and self.kind == alert.kind
            and self.parent_id is None
            and self.status in OPEN
            and self.created_at >= alert.created_at - window
            and (self.user_given == alert.user_given or self.user_id == user_id)
        )


@dataclass
class _Plan:
    resolved: list[Alert] = field(default_factory=list)
    found: dict[int, dict[str, Any]] = field(default_factory=dict)
    joins: list[tuple[Alert, Alert, SlackUser]] = field(default_factory=list)


def lock_many(session: Session, ids: Sequence[int]) -> dict[int, Alert]:
    """The alerts by id, re-read and row-locked on PostgreSQL in one statement, highest id
    first: the order every other writer locks in (an alert, then its older group parent),
    so a batch and a single settle cannot wait on each other in a cycle."""
    if not ids:
        return {}
    q = _LOCK_MANY[session.get_bind().dialect.name == "postgresql"]
    return {a.id: a for a in session.scalars(q, {"ids": sorted(set(ids))})}


def _in_force(session: Session, now: datetime) -> tuple[bool, bool, bool]:
    """Whether any suppression rule, exemption or snooze is in force, in one round trip: when
    none is (the common case), no alert of the batch needs its own check."""
    row = session.execute(_IN_FORCE, {"now": now}).one()
    return bool(row[0]), bool(row[1]), bool(row[2])


def _possible_parents(session: Session, people: Sequence[Person], window: timedelta) -> list[int]:
    """Ids of open top-level alerts older than the batch's that one of them could join."""
    values = {
        "kinds": sorted({p.kind for p in people}),
        "givens": sorted({p.user_given for p in people}),
        "users": sorted({p.user.id for p in people if p.user is not None}) or [""],
        "batch": [p.alert_id for p in people],
        "below": max(p.alert_id for p in people),
        "since": min(p.created_at for p in people) - window,
    }
    return sorted(set(session.scalars(_POSSIBLE_PARENTS, values)))


def _plan(
    session: Session,
    alerts: list[Alert],
    older: list[Alert],
    people: dict[int, Person],
    window: timedelta,
) -> _Plan:  # fmt: skip
    """Decide each alert in id order, as one by one would: the rare outcomes (suppressed,
    exempt, unknown, snoozed) are applied at once, the common ones (resolved, joined) collected
    for set-based writes. ``older``: the other alerts they may join (locked), older or settled."""
    now = utcnow()
    plan = _Plan()
    rules, exempt, snoozed = _in_force(session, now)
    candidates = {a.id: _Candidate.of(a) for a in [*older, *alerts]}
    rows = {a.id: a for a in [*older, *alerts]}
    # Who each candidate may be a parent for: by kind and what the tool said, and by kind and
    # Slack id (filled in as alerts resolve), so a batch is not compared with itself squared.
    by_given: dict[tuple[str, str], list[_Candidate]] = {}
    by_user: dict[tuple[str, str], list[_Candidate]] = {}
    for c in candidates.values():
        by_given.setdefault((c.kind, c.user_given), []).append(c)
        if c.user_id:
            by_user.setdefault((c.kind, c.user_id), []).append(c)
    for alert in alerts:
        person = people[alert.id]
        user = person.user
        found = {"user_id": user.id, "user_name": user.name} if user else {}
        me = candidates[alert.id]
        me.status = "settled"  # a parent only once it is resolved below
        if settled_before_grouping(session, alert, person.ids, user, rules=rules,
                                   exempt=exempt, snoozed=snoozed):  # fmt: skip
            continue
        assert user is not None
        near = [*by_given.get((alert.kind, alert.user_given), ()),
                *by_user.get((alert.kind, user.id), ())]  # fmt: skip
        parents = [c for c in near if c.takes(alert, user.id, window)]
        if parents:
            parent = min(parents, key=lambda c: c.id)
            me.parent_id = parent.id
            plan.joins.append((alert, rows[parent.id], user))
            continue
        me.status, me.user_id = "new", user.id
        by_user.setdefault((alert.kind, user.id), []).append(me)
        plan.resolved.append(alert)
        plan.found[alert.id] = found
    return plan


def settle_people(
    db: Database,
    people: Sequence[Person],
    window: timedelta,
    *,
    events: Sequence[tuple[int, Event]] = (),
    done: Sequence[int] = (),
    take_dms: timedelta | None = None,
) -> tuple[list[tuple[Job, DmContext]], set[str]]:  # fmt: skip
    """What each new alert becomes once Slack said who its person is (suppressed, exempt,
    unknown, snoozed, grouped under an open alert, or resolved, which queues the DM), for many
    alerts in one transaction. The same transaction applies ``events`` (alerts
    with nobody to ask, lookups that failed) and marks the ``done`` outbox jobs done.

    With ``take_dms`` (a lease), it also claims the DM jobs it queued, marked as about to be
    delivered, with what each DM shows: the caller sends them at once instead of leaving them
    for the next claim (one transaction and one hand-over fewer on the way to every DM).

    Returns those DMs, and the effects queued for others to run (whom to wake)."""
    by_id = {p.alert_id: p for p in people}

    def work(session: Session) -> tuple[list[tuple[Job, DmContext]], set[str]]:
        taken = settle(session)
        queued = set(enqueued(session))
        if taken:
            queued.discard("send_dm")  # the DMs queued are the caller's to send
        return taken, queued

    def settle(session: Session) -> list[tuple[Job, DmContext]]:
        older = _possible_parents(session, people, window) if people else []
        locked = lock_many(session, [*older, *by_id, *(i for i, _ in events)])
        for alert_id, event in events:
            if alert_id in locked:
                apply_event(session, locked[alert_id], event)
        mine = [locked[i] for i in sorted(by_id) if i in locked]
        alerts = [a for a in mine if a.status == "new"]
        if alerts:
            # Any alert not being settled here may be a parent: the older ones, and one of
            # the batch's own that was settled already (its job ran again).
            others = [locked[i] for i in older if i in locked]
            others += [a for a in mine if a.status != "new"]
            plan = _plan(session, alerts, others, by_id, window)
            to_dm = storm_guard(session, plan.resolved, plan.found)
            apply_to_many(session, to_dm, Event(EventType.USER_RESOLVED), utcnow(),
                          also_set=plan.found)  # fmt: skip
            for alert, parent, user in plan.joins:
                attach_to_parent(session, alert, parent, user.id, user.name)
        mark_done(session, done)
        if take_dms is None or not alerts or not to_dm:
            return []
        resolved = {a.id: a for a in to_dm}
        jobs = claim_dms(session, list(resolved), take_dms)
        contexts, _ = dm_contexts(session, resolved, [(j.id, j.alert_id or 0, True) for j in jobs])
        return [(j, contexts[j.alert_id]) for j in jobs if j.alert_id in contexts]

    return retrying(db, work)


_JOB_COLUMNS = ("id", "alert_id", "payload", "attempts", "created_at", "claims")


def claim_dms(session: Session, alert_ids: list[int], lease: timedelta) -> list[Job]:
    """Claim the pending ``send_dm`` jobs of ``alert_ids`` (leased, and marked as about to be
    delivered, as the dispatcher's claim and a handler's mark would)."""
    now = utcnow()
    rows = session.execute(
        update(OUTBOX)
        .where(
            OUTBOX.c.effect == "send_dm",
            OUTBOX.c.alert_id.in_(alert_ids),
            OUTBOX.c.status == "pending",
            OUTBOX.c.next_attempt_at <= now,  # one waiting out a backoff keeps waiting
            or_(OUTBOX.c.locked_until.is_(None), OUTBOX.c.locked_until < now),
        )
        .values(locked_until=now + lease, claims=OUTBOX.c.claims + 1, delivery_started_at=now)
        .returning(*(OUTBOX.c[n] for n in _JOB_COLUMNS))
    ).all()
    return sorted(
        (Job(r.id, "send_dm", r.alert_id, r.payload or {}, r.attempts, r.created_at, r.claims)
         for r in rows),
        key=lambda j: j.id,
    )  # fmt: skip


def dm_contexts(
    session: Session, alerts: dict[int, Alert], jobs: Sequence[tuple[int, int, bool]]
) -> tuple[dict[int, DmContext], list[int]]:
    """The contexts of the alerts among ``jobs`` (job id, alert id, mark) that still need
    their DM, by alert id, and the ids of the jobs to mark (their mark goes in this
    transaction, before anything is posted)."""
    due = [a for a in alerts.values() if a.status == "new" and a.user_id]
    if not due:
        return {}, []
    fresh = [a.id for a in due if not a.dm_ts]
    grouped: dict[int, list[Alert]] = {}
    if fresh:
        for child in session.scalars(_CHILDREN, {"ids": fresh}):
            assert child.parent_id is not None
            grouped.setdefault(child.parent_id, []).append(child)
    # Whether each person got a DM before: their lowest and highest DMed alert ids say
    # whether one other than this alert exists.
    people = sorted({a.user_id for a in due if a.user_id})
    dmed = {
        row.user_id: (row.low, row.high) for row in session.execute(_DMED_BEFORE, {"users": people})
    }
    out: dict[int, DmContext] = {}
    due_ids = {a.id for a in due}
    marks = [job_id for job_id, alert_id, mark in jobs
             if mark and alert_id in due_ids and not alerts[alert_id].dm_ts]  # fmt: skip
    for job_id, alert_id, _mark in jobs:
        alert = alerts.get(alert_id)
        if alert is None or alert_id not in due_ids:
            continue
        if alert.dm_ts:  # posted before a crash, not yet recorded as sent
            out[alert_id] = DmContext(alert, greet=False, grouped=[], marked=False)
            continue
        low, high = dmed.get(alert.user_id, (alert.id, alert.id))
        earlier = low != alert.id or high != alert.id
        out[alert_id] = DmContext(alert, greet=not earlier, grouped=grouped.get(alert_id, []),
                                  marked=job_id in marks)  # fmt: skip
    return out, marks


def prepare_dms(db: Database, jobs: Sequence[tuple[int, int, bool]]) -> dict[int, DmContext]:
    """For many (job id, alert id, mark) at once: the contexts of the alerts that still need
    their DM, by alert id, with the delivery marks committed before anything is posted."""
    ids = [alert_id for _, alert_id, _ in jobs]
    with db.write() as session:
        alerts = {a.id: a for a in session.scalars(select(Alert).where(Alert.id.in_(ids)))}
        out, marks = dm_contexts(session, alerts, jobs)
        if marks:
            session.execute(
                update(Outbox).where(Outbox.id.in_(marks)).values(delivery_started_at=utcnow())
            )
        return out


@dataclass(frozen=True)
class Sent:
    alert_id: int
    also_set: dict[str, Any]  # dm_channel, dm_ts and the deadlines
    shown: int  # grouped alerts the DM showed


def finish_dms(
    db: Database,
    sent: Sequence[Sent],
    failed: Sequence[tuple[int, Event]],
    *,
    done: Sequence[int] = (),
) -> set[str]:  # fmt: skip
    """Record many DMs as sent (queueing the re-render of a group that grew while its DM was
    on its way), plus the events of those that failed, in one transaction that also marks the
    ``done`` outbox jobs done. Returns the effects it queued."""
    if not sent and not failed and not done:
        return set()
    shown = {s.alert_id: s.shown for s in sent}

    def work(session: Session) -> set[str]:
        record(session)
        return set(enqueued(session))

    def record(session: Session) -> None:
        locked = lock_many(session, [*shown, *(alert_id for alert_id, _ in failed)])
        apply_to_many(session, [locked[i] for i in shown if i in locked],
                      Event(EventType.DM_SENT), utcnow(),
                      also_set={s.alert_id: s.also_set for s in sent})  # fmt: skip
        for alert_id, event in failed:
            if alert_id in locked:
                apply_event(session, locked[alert_id], event)
        mark_done(session, done)
        if not shown:
            return
        counts: dict[int | None, int] = {
            parent: n for parent, n in session.execute(_GROUP_SIZES, {"ids": list(shown)})
        }
        for alert_id, n in shown.items():
            if counts.get(alert_id, 0) != n:  # alerts joined while the DM was on its way
                enqueue(session, effect="refresh_dm", alert_id=alert_id,
                        idempotency_key=f"refresh:{alert_id}:sent:{n}")  # fmt: skip

    return retrying(db, work)
