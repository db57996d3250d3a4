"""Leases of jobs that one replica at a time runs (the daily purge), and when they last ran."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from securitybot.store.base import Base, UTCDateTime


class JobLease(Base):
    """One row per singleton job. A replica runs it only while ``lease_until`` is its own and in
    the future; one that dies stops renewing, and another takes the job over once it expires."""

    __tablename__ = "job_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When a run last finished: a replica whose clock fires later the same day skips it.
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
