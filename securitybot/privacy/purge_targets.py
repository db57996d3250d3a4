"""What the purge deletes, table by table: each :class:`Target` selects one window of
eligible rows after a keyset cursor and deletes them again re-checking eligibility in SQL, so
that an alert opened or held meanwhile stays. :mod:`securitybot.privacy.purge` runs them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Table,
    any_,
    bindparam,
    delete,
    exists,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session, aliased

from securitybot.privacy.retention import FINISHED, FINISHED_JOBS, Hold, Policy, alert_eligible
from securitybot.store.aer_budget_models import AerHeldReset
from securitybot.store.aer_models import (
    AerAnomaly,
    AerCounter,
    AerNotification,
    AerProfile,
    AerSession,
    AerUserState,
)
from securitybot.store.models import Alert, AuditLog, Outbox, Snooze
from securitybot.store.paging_models import Page, PagedAlert
from securitybot.store.planner import unindexed


@dataclass
class Batch:
    """One window of a table's ids, ``low`` (exclusive) to ``high`` (inclusive): the rows in it
    that are eligible now (their count is what a dry run reports) and the ones that must stay
    whatever the SQL re-check says (held, or an alert's open child). The delete is one range
    predicate on the primary key plus the eligibility conditions and ``NOT IN kept`` (almost
    always empty), so no statement carries hundreds of ids: each compiles once and is cached."""

    low: int
    high: int
    eligible: int
    kept: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return self.eligible


# A target selects one batch after a cursor: (the batch or the keys to delete, the next cursor
# or None at the end); the delete removes them in a write transaction and says how many went.
Select = Callable[[Session, Any, int], tuple[Any, Any]]
Delete = Callable[[Session, Any], int]


@dataclass
class Target:
    category: str
    table: str
    select: Select
    delete: Delete
    # Tables without a cursor (every selected row goes) count a dry run in one statement.
    count: Callable[[Session], int] | None = None


def _held_alert(hold: Hold, alert_id: int | None, kind: str | None, *people: str | None) -> bool:
    return alert_id is not None and hold.holds_alert(alert_id, kind or "", *people)


def _window(session: Session, model: Any, cols: Sequence[Any], after: int | None, n: int,
            cutoff: datetime, *, join: tuple[Any, Any] | None = None
            ) -> tuple[list[Any], int | None]:  # fmt: skip
    """The next ``n`` rows by primary key after ``after`` (an index range, however many rows
    are eligible, so every batch costs the same), and the cursor; None once a whole window is
    younger than the cut-off: rows are only ever inserted with ``created_at`` = now, so ids
    grow with time and the rest of the table is younger still (a few seconds of skew between
    concurrent writers do not matter: a window is 500 rows). ``join``: (model, on) whose
    columns ``cols`` may name, an outer join (the alert an audit row or a job is about)."""
    stmt = select(model.id, model.created_at, *cols)
    if join is not None:
        stmt = stmt.outerjoin(*join)
    rows = session.execute(
        stmt.where(model.id > (after or 0)).order_by(model.id).limit(n)
    ).all()  # fmt: skip
    if not rows or min(r.created_at for r in rows) >= cutoff:
        return [], None
    return list(rows), rows[-1].id


def _in_window(model: Any, batch: Batch) -> list[ColumnElement[bool]]:
    where = [model.id > batch.low, model.id <= batch.high]
    if batch.kept:
        where.append(model.id.not_in(batch.kept))
    return where


def _batch(after: int | None, rows: list[Any], eligible: int, kept: list[int]) -> Batch:
    return Batch(low=after or 0, high=rows[-1].id, eligible=eligible, kept=kept)


def _victims(session: Session, where: list[ColumnElement[bool]], *, lock: bool
             ) -> Callable[[Any], ColumnElement[bool]] | None:  # fmt: skip
    """How the statements of an alert batch name its victims (None: there are none).

    PostgreSQL (``lock``): selected once and locked, so nobody changes one before they go,
    then named as ``= ANY(array)``: one bind parameter, one prepared statement however many
    (as a subquery each statement re-ran the eligibility test, NOT EXISTS over children
    included: five times a batch, a round trip each on a busy server). SQLite, where nothing
    else writes meanwhile: the subquery, so no statement carries the ids."""
    found = select(Alert.id).where(*where)
    if not lock:
        victims = found.scalar_subquery()
        return lambda col: col.in_(victims)
    ids = list(session.scalars(found.with_for_update()))
    if not ids:
        return None
    bound = bindparam("ids", ids, type_=ARRAY(BigInteger))
    return lambda col: col == any_(bound)


def _open_alert(alert_id: Any) -> ColumnElement[bool]:
    """SQL: the alert ``alert_id`` names is still open (re-checked in the deleting statement)."""
    a = aliased(Alert)
    return exists().where(a.id == alert_id, a.status.not_in(sorted(FINISHED)))


def _alerts(policy: Policy, *, lock: bool) -> Target:
    cutoff = policy.cutoffs["alerts"]
    hold = policy.hold
    child = aliased(Alert)

    def eligible() -> list[ColumnElement[bool]]:
        return [unindexed(Alert.status).in_(sorted(FINISHED)), unindexed(Alert.created_at) < cutoff,
                unindexed(Alert.updated_at) < cutoff,
                # A parent whose grouped child is still open stays until the child is finished.
                ~exists().where(child.parent_id == Alert.id,
                                child.status.not_in(sorted(FINISHED)))]  # fmt: skip

    def sel(session: Session, after: int | None, n: int) -> tuple[Batch | list[Any], Any]:
        rows, cursor = _window(session, Alert, (Alert.kind, Alert.status, Alert.updated_at,
                               Alert.user_given, Alert.user_id), after, n, cutoff)  # fmt: skip
        if not rows:
            return [], cursor
        busy = set(session.scalars(
            select(Alert.parent_id).where(Alert.parent_id > (after or 0),
                                          Alert.parent_id <= rows[-1].id,
                                          Alert.status.not_in(sorted(FINISHED)))
        ))  # fmt: skip
        kept = [
            r.id
            for r in rows
            if r.id in busy or hold.holds_alert(r.id, r.kind, r.user_given, r.user_id)
        ]
        stay = set(kept)
        gone = sum(
            1
            for r in rows
            if r.id not in stay
            and alert_eligible(r.status, max(r.created_at, r.updated_at), cutoff)
        )
        return (_batch(after, rows, gone, kept) if gone else []), cursor

    def dele(session: Session, batch: Batch) -> int:
        where = [*_in_window(Alert, batch), *eligible()]
        ids = _victims(session, where, lock=lock)
        if ids is None:
            return 0
        _dml(session, update(Alert).where(ids(Alert.parent_id)).values(parent_id=None))
        _dml(session, update(Snooze).where(ids(Snooze.source_alert_id))
                        .values(source_alert_id=None))  # fmt: skip
        _dml(session, delete(PagedAlert).where(ids(PagedAlert.alert_id)))
        _dml(session, delete(Page).where(ids(Page.alert_id)))
        _dml(session, delete(Outbox).where(ids(Outbox.alert_id)))
        return _dml(session, delete(Alert).where(*where))

    return Target("alerts", "alerts", sel, dele)


def _anomalies(policy: Policy) -> Target:
    """Anomalies and the decisions taken on them are kept as long as alerts."""
    cutoff = policy.cutoffs["alerts"]
    people = policy.hold.people

    def held_resets(low: int, high: int) -> Any:
        return select(AerHeldReset.anomaly_id).where(
            AerHeldReset.anomaly_id > low, AerHeldReset.anomaly_id <= high,
            AerHeldReset.status == "held")  # fmt: skip

    def sel(session: Session, after: int | None, n: int) -> tuple[Batch | list[Any], Any]:
        rows, cursor = _window(session, AerAnomaly, (AerAnomaly.user_id,), after, n, cutoff)
        if not rows:
            return [], cursor
        held = set(session.scalars(held_resets(after or 0, rows[-1].id)))
        kept = [r.id for r in rows if r.id in held or r.user_id in people]
        stay = set(kept)
        gone = sum(1 for r in rows if r.created_at < cutoff and r.id not in stay)
        return (_batch(after, rows, gone, kept) if gone else []), cursor

    def dele(session: Session, batch: Batch) -> int:
        stmt = delete(AerAnomaly).where(
            *_in_window(AerAnomaly, batch), unindexed(AerAnomaly.created_at) < cutoff,
            AerAnomaly.id.not_in(held_resets(batch.low, batch.high)))  # fmt: skip
        return _dml(session, stmt)

    return Target("alerts", "aer_anomalies", sel, dele)


def _audit(policy: Policy) -> Target:
    cutoff = policy.cutoffs["audit"]
    hold = policy.hold

    def sel(session: Session, after: int | None, n: int) -> tuple[Batch | list[Any], Any]:
        rows, cursor = _window(
            session, AuditLog, (AuditLog.alert_id, AuditLog.actor, AuditLog.subject_user,
                                Alert.status, Alert.kind, Alert.user_given, Alert.user_id),
            after, n, cutoff, join=(Alert, Alert.id == AuditLog.alert_id))  # fmt: skip
        if not rows:
            return [], cursor
        # Rows about an open or held alert stay, and rows naming a held person.
        kept = [
            r.id for r in rows
            if (r.status is not None and r.status not in FINISHED)
            or _held_alert(hold, r.alert_id, r.kind, r.user_given, r.user_id)
            or hold.holds_person(r.actor) or hold.holds_person(r.subject_user)
        ]  # fmt: skip
        stay = set(kept)
        gone = sum(1 for r in rows if r.created_at < cutoff and r.id not in stay)
        return (_batch(after, rows, gone, kept) if gone else []), cursor

    def dele(session: Session, batch: Batch) -> int:
        stmt = delete(AuditLog).where(*_in_window(AuditLog, batch),
                                      unindexed(AuditLog.created_at) < cutoff,
                                      ~_open_alert(AuditLog.alert_id))  # fmt: skip
        return _dml(session, stmt)

    return Target("audit", "audit_log", sel, dele)


def _outbox(policy: Policy) -> Target:
    cutoff = policy.cutoffs["outbox"]
    hold = policy.hold

    def eligible() -> list[ColumnElement[bool]]:
        return [unindexed(Outbox.status).in_(sorted(FINISHED_JOBS)),
                func.coalesce(Outbox.done_at, Outbox.created_at) < cutoff]  # fmt: skip

    def sel(session: Session, after: int | None, n: int) -> tuple[Batch | list[Any], Any]:
        rows, cursor = _window(
            session, Outbox, (Outbox.alert_id, Outbox.status, Outbox.done_at, Alert.kind,
                              Alert.user_given, Alert.user_id),
            after, n, cutoff, join=(Alert, Alert.id == Outbox.alert_id))  # fmt: skip
        if not rows:
            return [], cursor
        # Finished jobs of an open alert may go; those of a held alert stay.
        kept = [r.id for r in rows
                if _held_alert(hold, r.alert_id, r.kind, r.user_given, r.user_id)]  # fmt: skip
        stay = set(kept)
        gone = sum(1 for r in rows
                   if r.status in FINISHED_JOBS and (r.done_at or r.created_at) < cutoff
                   and r.id not in stay)  # fmt: skip
        return (_batch(after, rows, gone, kept) if gone else []), cursor

    def dele(session: Session, batch: Batch) -> int:
        stmt = delete(Outbox).where(*_in_window(Outbox, batch), *eligible())
        return _dml(session, stmt)

    return Target("outbox", "outbox", sel, dele)


def _keyed(category: str, table: Table, age: Any, cutoff: datetime, people: list[str]) -> Target:
    """Tables keyed by (org, user, ...) without a surrogate id: every selected row goes (the
    hold is in the WHERE), so each batch simply takes the next ``n`` eligible keys."""
    pk = list(table.primary_key.columns)
    where = [age < cutoff]
    if people:
        where.append(table.c.user_id.not_in(people))

    def sel(session: Session, after: Any, n: int) -> tuple[list[Any], Any]:
        keys = [tuple(r) for r in session.execute(select(*pk).where(*where).limit(n))]
        return keys, (True if keys else None)

    def dele(session: Session, keys: list[Any]) -> int:
        stmt = delete(table).where(tuple_(*pk).in_(keys), *where)
        return _dml(session, stmt)

    def count(session: Session) -> int:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)

    return Target(category, table.name, sel, dele, count)


def targets(policy: Policy, *, lock: bool = False) -> list[Target]:
    """What the policy purges, in order; ``lock``: lock an alert batch's rows first (PostgreSQL,
    where other writers run concurrently; SQLite has one writer at a time)."""
    out: list[Target] = []
    c = policy.cutoffs
    if "outbox" in c:  # first: the cheapest and the most rows (two or more per alert)
        out.append(_outbox(policy))
    if "alerts" in c:
        out += [_alerts(policy, lock=lock), _anomalies(policy)]
    if "audit" in c:
        out.append(_audit(policy))
    if "aer" in c:
        people = sorted(policy.hold.people)
        cut = c["aer"]
        for model, age in ((AerCounter, AerCounter.bucket_start),
                           (AerProfile, AerProfile.updated_at),
                           (AerUserState, AerUserState.updated_at),
                           (AerSession, AerSession.updated_at),
                           (AerNotification, AerNotification.last_at)):  # fmt: skip
            out.append(_keyed("aer", model.__table__, age, cut, people))  # type: ignore[arg-type]
    return out


def _dml(session: Session, stmt: Any) -> int:
    """Run an UPDATE or DELETE without the ORM's session synchronisation (nothing here is in
    the identity map, and its RETURNING of every id was a third of a batch's Python time)."""
    return _rows(session.execute(stmt.execution_options(synchronize_session=False)))


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
