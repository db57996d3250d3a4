"""Dead letters: JetStream messages a worker will not act on, kept for an operator.

A message whose MAC is missing, wrong or too old, that is not JSON of the API's shape, or
whose events would not pass validation is recorded in ``aer_dead_letters`` (with the reason)
in the same transaction that moves the partition past it, published to
``<dead_letter_subject>.<partition>`` for anyone watching, and acknowledged: its partition
carries on. ``securitybot aer dead-letters list|replay`` shows them and, when an operator
asks, re-publishes their events with a fresh MAC after validating them as the API would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from securitybot import untrusted
from securitybot.aer.events import ActivityEvent, EventError, parse_event
from securitybot.aer.stream import StreamPublisher, StreamUnavailable
from securitybot.config import AerStream
from securitybot.store.aer_models import AerDeadLetter
from securitybot.store.alerts import audit
from securitybot.store.db import Database
from securitybot.store.models import utcnow
from securitybot.store.once import dialect_insert

logger = logging.getLogger(__name__)
REASONS = ("missing_mac", "bad_mac", "expired_mac", "undecodable", "invalid")
LOG_EVERY = 60.0  # seconds between two log lines about dead letters of one reason
_HEADER_LIMIT = 1024  # characters kept of each header value (they are untrusted)


@dataclass(frozen=True)
class DeadLetter:
    stream: str
    seq: int
    partition: int
    subject: str
    reason: str
    detail: str
    headers: dict[str, str]
    data: bytes
    stored_at: datetime

    def row(self) -> dict[str, Any]:
        headers = {k[:128]: str(v)[:_HEADER_LIMIT] for k, v in self.headers.items()}
        msg_id = self.headers.get("Nats-Msg-Id")
        return {
            "stream": self.stream, "seq": self.seq, "partition": self.partition,
            "subject": self.subject[:255], "reason": self.reason, "detail": self.detail[:2000],
            "msg_id": str(msg_id)[:255] if msg_id else None,
            "headers": headers, "data": self.data, "stored_at": self.stored_at,
        }  # fmt: skip


def record(session: Session, letters: list[DeadLetter]) -> None:
    """Insert, once per (stream, sequence): a redelivery after a crash adds nothing."""
    if letters:
        table: Table = AerDeadLetter.__table__  # type: ignore[assignment]
        stmt = dialect_insert(session, table).on_conflict_do_nothing()
        session.connection().execute(stmt, [d.row() for d in letters])


@dataclass
class RateLimitedLog:
    """One warning per reason at first, then at most one per ``every`` seconds with a count."""

    every: float = LOG_EVERY
    _last: dict[str, float] = field(default_factory=dict)
    _held: dict[str, int] = field(default_factory=dict)

    def note(self, letter: DeadLetter) -> None:
        now = time.monotonic()
        reason = letter.reason
        last = self._last.get(reason)
        if last is not None and now - last < self.every:
            self._held[reason] = self._held.get(reason, 0) + 1
            return
        held = self._held.pop(reason, 0)
        self._last[reason] = now
        more = f" (and {held} more since the last line)" if held else ""
        logger.warning(
            "AER dead letter: %s message %s of %s on %s: %s%s; not acted on, see "
            "`securitybot aer dead-letters list`", reason, letter.seq, letter.stream,
            letter.subject[:120], letter.detail[:200], more,
        )  # fmt: skip


def listing(
    session: Session, stream: str, *, reason: str | None = None, limit: int = 100,
    include_replayed: bool = True,
) -> list[AerDeadLetter]:  # fmt: skip
    q = select(AerDeadLetter).where(AerDeadLetter.stream == stream)
    if reason is not None:
        q = q.where(AerDeadLetter.reason == reason)
    if not include_replayed:
        q = q.where(AerDeadLetter.replayed_at.is_(None))
    return list(session.scalars(q.order_by(AerDeadLetter.id).limit(limit)))


@dataclass(frozen=True)
class Replayed:
    id: int
    events: int  # published again; 0 with ``refused`` set
    refused: str | None = None  # why it was not published


def replay_events(data: bytes, now: datetime) -> list[ActivityEvent]:
    """The events of a dead letter, validated exactly as ``POST /api/v1/events`` would: a
    replay signs them, so it must not let through what the API would refuse."""
    try:
        rows = untrusted.loads(data)
    except (ValueError, untrusted.UnsafeJson) as exc:
        raise EventError("(message)", f"not JSON: {exc}"[:200]) from None
    if not isinstance(rows, list) or not rows:
        raise EventError("(message)", "not a JSON array of events")
    out = []
    for i, row in enumerate(rows):
        try:
            untrusted.check(row)
            out.append(parse_event(row, now))
        except (EventError, untrusted.UnsafeJson) as exc:
            raise EventError(f"[{i}].{getattr(exc, 'field', '')}", str(exc)) from None
    return out


async def replay(
    db: Database, cfg: AerStream, ids: Sequence[int], *, actor: str, again: bool = False
) -> list[Replayed]:
    """Publish the events of dead letters ``ids`` again, with a fresh MAC and a message id of
    their own (the original's would be dropped as a duplicate), and mark them replayed."""
    publisher = StreamPublisher(cfg)
    out = []
    try:
        for id_ in ids:
            with db.read() as session:
                row = session.get(AerDeadLetter, id_)
                if row is None or row.stream != cfg.stream:
                    out.append(Replayed(id_, 0, "no such dead letter in this stream"))
                    continue
                data, done = row.data, row.replayed_at
            if done is not None and not again:
                out.append(Replayed(id_, 0, f"already replayed at {done:%Y-%m-%d %H:%M:%S}Z"))
                continue
            try:
                events = replay_events(data, utcnow())
            except EventError as exc:
                out.append(Replayed(id_, 0, f"fails validation: {exc}"))
                continue
            try:
                await publisher.publish(events, salt=f"replay:{id_}:")
            except StreamUnavailable as exc:
                out.append(Replayed(id_, 0, str(exc)))
                continue
            with db.write() as session:
                at = utcnow()
                session.execute(
                    update(AerDeadLetter).where(AerDeadLetter.id == id_)
                    .values(replayed_at=at, replayed_by=actor[:255])
                )  # fmt: skip
                audit(session, action="aer.dead_letter.replayed", actor=actor[:64], at=at,
                      details={"id": id_, "events": len(events), "stream": cfg.stream})  # fmt: skip
            out.append(Replayed(id_, len(events)))
    finally:
        await publisher.close()
    return out
