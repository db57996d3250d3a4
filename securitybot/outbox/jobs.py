"""What the outbox hands a handler (a claimed job) and what a handler answers (its outcome)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


@dataclass(frozen=True)
class Job:
    id: int
    effect: str
    alert_id: int | None
    payload: dict[str, Any]
    attempts: int
    created_at: Any  # a datetime, or text on SQLite (raw SQL skips the column type)
    claims: int = 1  # this claim included
    delivery_started: bool = False  # an earlier run marked that it was about to post
    # Written leased and run at once by this process (Handover.run), not claimed: what its
    # writer knew when it wrote the row still holds, so the handler need not read it back.
    handed_over: bool = False

    @property
    def created_epoch(self) -> float:
        """created_at as Unix seconds (Slack's timestamps are Unix seconds too)."""
        created = self.created_at
        if isinstance(created, str):
            created = datetime.fromisoformat(created)
        if created.tzinfo is None:  # SQLite stores naive UTC
            created = created.replace(tzinfo=UTC)
        return float(created.timestamp())


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Recorded(Done):
    """Done, and already marked done in the handler's own transaction, together with the
    work it did (``store.outbox.mark_done``): there is nothing left to record."""


@dataclass(frozen=True)
class RetryAt:
    """Try again at ``when``. ``failure`` False means "not yet" (polling), not an error."""

    when: datetime
    error: str = ""
    failure: bool = True


@dataclass(frozen=True)
class GiveUp:
    error: str


Outcome = Done | RetryAt | GiveUp
Handler = Callable[[Job], Awaitable[Outcome]]
# Many jobs of one effect at once; one outcome per job, in the same order.
BatchHandler = Callable[[list[Job]], Awaitable[list[Outcome]]]


def backoff(attempt: int, *, base: float = 1.0, cap: float = 300.0) -> timedelta:
    """Exponential backoff with full jitter (attempt counts from 1)."""
    return timedelta(seconds=random.uniform(0.5, 1.0) * min(cap, base * 2 ** (attempt - 1)))


class Wake(Protocol):
    """Wakes the dispatcher after new outbox rows of ``effects``: only their claimers look.
    None (the writer cannot say) wakes every claimer; an empty collection, nobody."""

    def __call__(self, effects: Iterable[str] | None = None, /) -> None: ...


class Handover(Protocol):
    """The dispatcher's side of jobs a handler wrote leased to this process in its own
    transaction (``store.outbox``'s ``take``/``enqueue_leased``), rather than leaving them for a
    claimer to find: ``adopt`` those the handler runs itself (renewed with the others' until
    ``release`` records their outcomes); ``run`` those the dispatcher should run at once like
    claimed ones (a push's poll must be held in Duo before its person approves)."""

    lease: timedelta

    def adopt(self, jobs: list[Job]) -> None: ...
    async def release(self, jobs: list[Job], outcomes: list[Outcome]) -> None: ...
    def run(self, jobs: list[Job]) -> None: ...
