"""A lease in the database for jobs one replica at a time runs (the daily purge).

Taking it is one guarded UPDATE (free, expired, or already ours), so two replicas whose cron
fires together cannot both win; the winner renews it between batches, and a replica that died
mid-run leaves a lease that expires, so the next run (any replica) takes over."""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import datetime, timedelta

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from securitybot.store.db import Database
from securitybot.store.models import utcnow
from securitybot.store.privacy_models import JobLease


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:128]


class Lease:
    def __init__(self, db: Database, name: str, ttl: timedelta, owner: str | None = None) -> None:
        self.db = db
        self.name = name
        self.ttl = ttl
        self.owner = owner or owner_name()
        self._renewed = time.monotonic()

    def _ensure_row(self) -> None:
        with self.db.read() as session:
            if session.get(JobLease, self.name) is not None:
                return
        try:
            with self.db.write() as session:
                session.execute(insert(JobLease).values(name=self.name))
        except IntegrityError:  # another replica inserted it first: fine
            pass

    def acquire(self, *, unless_done_since: datetime | None = None) -> bool:
        """Take the lease if it is free, expired or ours; ``unless_done_since``: not if a run
        finished after that time (another replica already did today's)."""
        self._ensure_row()
        now = utcnow()
        with self.db.write() as session:
            cond = [
                JobLease.name == self.name,
                or_(JobLease.lease_until.is_(None), JobLease.lease_until < now,
                    JobLease.owner == self.owner),
            ]  # fmt: skip
            if unless_done_since is not None:
                cond.append(or_(JobLease.done_at.is_(None), JobLease.done_at < unless_done_since))
            got = session.execute(
                update(JobLease).where(*cond)
                .values(owner=self.owner, lease_until=now + self.ttl)
            )  # fmt: skip
        self._renewed = time.monotonic()
        return _rows(got) == 1

    def renew_if_due(self) -> bool:
        """Renew once a fifth of the lease has gone by (not a write per batch); False if the
        lease is no longer ours."""
        if time.monotonic() - self._renewed < self.ttl.total_seconds() / 5:
            return True
        return self.renew()

    def renew(self) -> bool:
        """Extend the lease; False if it is no longer ours (it expired and another took it)."""
        with self.db.write() as session:
            ok = self._renew(session)
        self._renewed = time.monotonic()
        return ok

    def _renew(self, session: Session) -> bool:
        got = session.execute(
            update(JobLease)
            .where(JobLease.name == self.name, JobLease.owner == self.owner)
            .values(lease_until=utcnow() + self.ttl)
        )
        return _rows(got) == 1

    def release(self, *, done: bool) -> None:
        with self.db.write() as session:
            values: dict[str, object] = {"owner": None, "lease_until": None}
            if done:
                values["done_at"] = utcnow()
            session.execute(
                update(JobLease)
                .where(JobLease.name == self.name, JobLease.owner == self.owner)
                .values(**values)
            )

    def holder(self) -> tuple[str | None, datetime | None]:
        with self.db.read() as session:
            row = session.execute(
                select(JobLease.owner, JobLease.lease_until).where(JobLease.name == self.name)
            ).first()
        return (None, None) if row is None else (row.owner, row.lease_until)


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
