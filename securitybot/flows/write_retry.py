"""A write transaction that runs again from scratch when it lost a race.

Every state change goes through ``apply_event`` (a conditional UPDATE on the alert's version):
a writer that loses raises ``ConcurrentUpdate``, and PostgreSQL breaks a lock cycle by aborting
one transaction (SQLSTATE 40P01: an alert's writers mostly lock it, then its older group parent,
but mirroring to a group locks the other way round). Both are worth a fresh try, a few times;
any other error is not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from tenacity import Retrying, retry_if_exception, stop_after_attempt

from securitybot.flows.transitions import ConcurrentUpdate
from securitybot.store.db import Database

T = TypeVar("T")
ATTEMPTS = 5


def lost_race(exc: BaseException) -> bool:
    if isinstance(exc, ConcurrentUpdate):
        return True
    orig = getattr(exc, "orig", None) if isinstance(exc, DBAPIError) else None
    return getattr(orig, "sqlstate", None) == "40P01"


def retrying(db: Database, work: Callable[[Session], T], *, priority: bool = False) -> T:
    """``work`` in one write transaction, re-run (up to ``ATTEMPTS`` in all) when it lost a
    race; the last loss, and any other error, is raised as it was."""
    for attempt in Retrying(
        stop=stop_after_attempt(ATTEMPTS), retry=retry_if_exception(lost_race), reraise=True
    ):
        with attempt, db.write(priority=priority) as session:
            return work(session)
    raise AssertionError("unreachable")  # Retrying either returns or raises
