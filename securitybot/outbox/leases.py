"""The outbox's SQL: claiming due jobs under a lease, renewing and releasing leases, and
recording outcomes. The dispatcher decides when; this says how, per store."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, text, update

from securitybot.outbox.jobs import Done, GiveUp, Job, Outcome
from securitybot.store.db import Database
from securitybot.store.models import Outbox, utcnow

OUTBOX = cast(Table, Outbox.__table__)

_CLAIM = """
    UPDATE outbox SET locked_until = :lease, claims = claims + 1
    WHERE id IN (
        SELECT id FROM outbox
        WHERE status = 'pending' AND next_attempt_at <= :now
          AND (locked_until IS NULL OR locked_until < :now){effects}
        ORDER BY next_attempt_at, id
        LIMIT :limit{lock})
    RETURNING id, effect, alert_id, payload, attempts, created_at, claims, delivery_started_at
"""
# SKIP LOCKED lets replicas claim side by side on PostgreSQL; SQLite has one writer and no
# row locks, so there the single UPDATE ... RETURNING is already atomic.
_LOCK = {True: "\n        FOR UPDATE SKIP LOCKED", False: ""}


def claim_statement(*, postgres: bool, only: str | None, skip: frozenset[str]) -> Any:
    """The claim of one lane (``only`` its effect) or of the general loop (all but ``skip``)."""
    if only is not None:
        effects = "\n          AND effect = :only"
    elif skip:
        effects = "\n          AND effect NOT IN ({})".format(
            ", ".join(f":skip{i}" for i in range(len(skip)))
        )
    else:
        effects = ""
    return text(_CLAIM.format(effects=effects, lock=_LOCK[postgres]))


def params(db: Database, lease: timedelta, **extra: Any) -> dict[str, Any]:
    now = utcnow()
    until = now + lease
    if db.is_sqlite:
        # Raw SQL bypasses the UTCDateTime type: SQLite stores naive UTC text.
        fmt = "%Y-%m-%d %H:%M:%S.%f"
        return {"now": now.strftime(fmt), "lease": until.strftime(fmt), **extra}
    return {"now": now, "lease": until, **extra}


def claim(
    db: Database, statement: Any, values: dict[str, Any], *, priority: bool = False
) -> list[Job]:
    """Run a claim statement (``claim_statement``); the claimed jobs in id order.
    ``priority``: before queued ordinary writes on SQLite (Database.write)."""
    with db.write(priority=priority) as session:
        rows = session.execute(statement, values).all()
    jobs = []
    for r in rows:
        payload = r.payload
        if isinstance(payload, str):
            payload = json.loads(payload)
        started = r.delivery_started_at is not None
        jobs.append(Job(r.id, r.effect, r.alert_id, payload or {}, r.attempts, r.created_at,
                        r.claims, started))  # fmt: skip
    jobs.sort(key=lambda j: j.id)
    return jobs


def renew(db: Database, ids: list[int], lease: timedelta) -> None:
    if not ids:
        return
    rows = select(Outbox.id).where(Outbox.id.in_(ids), Outbox.status == "pending")
    if db.is_postgres:
        # A row locked right now is being recorded (a batch marks its jobs done in its own
        # transaction): skip it rather than wait, so renewing can never join a lock cycle.
        rows = rows.with_for_update(skip_locked=True)
    with db.write() as session:
        session.execute(
            update(Outbox).where(Outbox.id.in_(rows)).values(locked_until=utcnow() + lease)
        )


def release(db: Database, ids: list[int]) -> None:
    """Hand back leases this process holds on jobs it will not finish (shutdown): pending
    rows become claimable at once. Rows already recorded keep what the record wrote."""
    with db.write() as session:
        session.execute(
            update(Outbox)
            .where(Outbox.id.in_(ids), Outbox.status == "pending")
            .values(locked_until=None)
        )


def release_orphaned(db: Database) -> None:
    """SQLite is served by one process (the service holds a file lock), so any lease found
    at start-up belongs to a process that died: release it now instead of waiting."""
    if db.is_sqlite:
        with db.write() as session:
            session.execute(
                update(Outbox)
                .where(Outbox.status == "pending", Outbox.locked_until.is_not(None))
                .values(locked_until=None)
            )


def record_many(db: Database, items: list[tuple[Job, Outcome]]) -> None:
    """Record several jobs' outcomes in one transaction: one executemany per shape of
    change (the statement text stays the same, whatever the number of jobs)."""
    now = utcnow()
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for job, outcome in items:
        values: dict[str, Any]
        if isinstance(outcome, Done):
            values = {"status": "done", "done_at": now, "locked_until": None}
        elif isinstance(outcome, GiveUp):
            values = {"status": "dead", "done_at": now, "locked_until": None,
                      "last_error": outcome.error[:2000],
                      "attempts": job.attempts + 1}  # fmt: skip
        else:
            values = {"next_attempt_at": outcome.when, "locked_until": None}
            if outcome.failure:
                values["attempts"] = job.attempts + 1
                values["last_error"] = outcome.error[:2000]
        shapes.setdefault(tuple(sorted(values)), []).append({"job_id": job.id, **values})
    with db.write() as session:
        conn = session.connection()
        for columns, rows in shapes.items():
            stmt = (
                update(OUTBOX)
                .where(OUTBOX.c.id == bindparam("job_id"))
                .values({c: bindparam(c) for c in columns})
            )
            conn.execute(stmt, rows)
