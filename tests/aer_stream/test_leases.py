"""Partition leases in SQL: fair shares, takeover after expiry, and a fenced commit position."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from securitybot.aer import partitions
from securitybot.store.aer_models import AerPartition
from securitybot.store.db import Database

S, N, LEASE = "AERTEST", 8, 5.0
T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)


def claim(db: Database, me: str, at: datetime) -> partitions.Claim:
    with db.write() as session:
        partitions.ensure_partitions(session, S, N)
    with db.write() as session:
        return partitions.claim(session, S, me, N, at, LEASE)


def test_a_second_worker_gets_half_and_a_silent_one_loses_all_after_its_lease(
    db: Database,
) -> None:
    assert claim(db, "a", T0).owned == frozenset(range(N))  # alone: everything
    assert claim(db, "b", T0).owned == frozenset()  # all held; b is now a live worker
    a = claim(db, "a", T0 + timedelta(seconds=1))
    assert len(a.surplus) == N // 2  # a stops those partitions, then gives them back
    with db.write() as session:
        partitions.release(session, S, "a", a.surplus)
    b = claim(db, "b", T0 + timedelta(seconds=1))
    assert b.owned == a.surplus and not b.surplus

    # a stops renewing (SIGKILL): once its lease has run out, b takes everything.
    assert claim(db, "b", T0 + timedelta(seconds=4)).owned == b.owned
    late = T0 + timedelta(seconds=1 + LEASE + 0.5)
    assert claim(db, "b", late).owned == frozenset(range(N))


def test_a_worker_whose_lease_was_taken_cannot_commit(db: Database) -> None:
    claim(db, "a", T0)
    with db.write() as session:
        partitions.advance(session, S, 3, "a", 0, 120)
    late = T0 + timedelta(seconds=LEASE * 2)
    assert 3 in claim(db, "b", late).owned
    with pytest.raises(partitions.LeaseLost), db.write() as session:
        partitions.advance(session, S, 3, "a", 120, 180)  # a wakes up from a long pause
    with pytest.raises(partitions.LeaseLost), db.write() as session:
        partitions.advance(session, S, 3, "b", 100, 180)  # not from where it was committed
    with db.write() as session:
        partitions.advance(session, S, 3, "b", 120, 180)
    with db.read() as session:
        assert partitions.position(session, S, 3) == 180
        row = session.scalars(select(AerPartition).where(AerPartition.partition == 3)).one()
    assert row.owner == "b"


def test_leaving_hands_partitions_back_at_once(db: Database) -> None:
    claim(db, "a", T0)
    with db.write() as session:
        partitions.leave(session, S, "a")
    assert claim(db, "b", T0 + timedelta(seconds=1)).owned == frozenset(range(N))
