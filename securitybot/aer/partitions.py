"""Partition leases and committed positions of the JetStream workers, in SQL.

One row per (stream, partition) says which worker holds it until when (``lease_until``) and
the stream sequence of the last message whose effects are committed (``last_seq``). Workers
heartbeat in ``aer_workers``; each takes about ``partitions / live workers`` partitions, so a
new worker gets its share and a dead worker's partitions move once its lease expires.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Table, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from securitybot.store.aer_models import AerPartition, AerWorker
from securitybot.store.once import dialect_insert


class LeaseLost(RuntimeError):
    """This worker no longer holds the partition (its lease was taken): nothing was committed."""


@dataclass(frozen=True)
class Claim:
    owned: frozenset[int]  # held by this worker now, lease renewed
    surplus: frozenset[int]  # above the fair share: to stop, then release


def ensure_partitions(session: Session, stream: str, n: int) -> None:
    table: Table = AerPartition.__table__  # type: ignore[assignment]
    stmt = dialect_insert(session, table).on_conflict_do_nothing()
    rows = [{"stream": stream, "partition": p, "last_seq": 0} for p in range(n)]
    session.connection().execute(stmt, rows)


def claim(session: Session, stream: str, me: str, n: int, now: datetime, lease: float) -> Claim:
    """Heartbeat, renew this worker's leases and take free or expired ones up to a fair share."""
    until = now + timedelta(seconds=lease)
    workers: Table = AerWorker.__table__  # type: ignore[assignment]
    ins = dialect_insert(session, workers)
    ins = ins.on_conflict_do_update(index_elements=["stream", "worker"], set_={"seen_at": now})
    session.connection().execute(ins, {"stream": stream, "worker": me, "seen_at": now})
    stale = now - timedelta(seconds=lease * 4)
    session.execute(delete(AerWorker).where(AerWorker.stream == stream, AerWorker.seen_at < stale))
    alive = session.scalar(
        select(func.count())
        .select_from(AerWorker)
        .where(AerWorker.stream == stream, AerWorker.seen_at >= now - timedelta(seconds=lease))
    )
    fair = math.ceil(n / max(1, int(alive or 1)))
    mine = AerPartition.stream == stream, AerPartition.owner == me
    session.execute(update(AerPartition).where(*mine).values(lease_until=until))
    owned = sorted(session.scalars(select(AerPartition.partition).where(*mine)))
    if len(owned) > fair:
        return Claim(frozenset(owned), frozenset(owned[fair:]))
    free = session.scalars(
        select(AerPartition.partition)
        .where(AerPartition.stream == stream, _free(now))
        .order_by(AerPartition.partition)
    )
    for p in free:
        if len(owned) >= fair:
            break
        took = session.execute(
            update(AerPartition)
            .where(AerPartition.stream == stream, AerPartition.partition == p, _free(now))
            .values(owner=me, lease_until=until)
        )
        if took.rowcount == 1:  # type: ignore[attr-defined]
            owned.append(p)
    return Claim(frozenset(owned), frozenset())


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(AerPartition.owner.is_(None), AerPartition.lease_until < now)


def release(session: Session, stream: str, me: str, parts: set[int] | frozenset[int]) -> None:
    if parts:
        session.execute(
            update(AerPartition)
            .where(
                AerPartition.stream == stream,
                AerPartition.owner == me,
                AerPartition.partition.in_(sorted(parts)),
            )
            .values(owner=None, lease_until=None)
        )


def leave(session: Session, stream: str, me: str) -> None:
    """A worker shutting down: give every partition back now rather than at lease expiry."""
    session.execute(
        update(AerPartition)
        .where(AerPartition.stream == stream, AerPartition.owner == me)
        .values(owner=None, lease_until=None)
    )
    session.execute(delete(AerWorker).where(AerWorker.stream == stream, AerWorker.worker == me))


def position(session: Session, stream: str, part: int) -> int:
    seq = session.scalar(
        select(AerPartition.last_seq).where(
            AerPartition.stream == stream, AerPartition.partition == part
        )
    )
    return int(seq or 0)


def advance(session: Session, stream: str, part: int, me: str, old: int, new: int) -> None:
    """Move the committed position, only if this worker still holds the partition at ``old``."""
    moved = session.execute(
        update(AerPartition)
        .where(
            and_(
                AerPartition.stream == stream,
                AerPartition.partition == part,
                AerPartition.owner == me,
                AerPartition.last_seq == old,
            )
        )
        .values(last_seq=new)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"partition {part} of {stream} is no longer held at {old}")
