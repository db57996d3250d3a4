"""What reaches the database while a block runs, for tests that count instead of timing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from securitybot.store.db import Database


@contextmanager
def counted(db: Database) -> Iterator[dict[str, int]]:
    """Transactions begun and statements sent on ``db``'s engine while the block runs."""
    seen = {"transactions": 0, "statements": 0}

    def begin(_conn: Any) -> None:
        seen["transactions"] += 1

    def statement(*_a: Any) -> None:
        seen["statements"] += 1

    event.listen(db.engine, "begin", begin)
    event.listen(db.engine, "before_cursor_execute", statement)
    try:
        yield seen
    finally:
        event.remove(db.engine, "begin", begin)
        event.remove(db.engine, "before_cursor_execute", statement)


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The statements sent on ``db``'s engine while the block runs, whitespace collapsed."""
    seen: list[str] = []

    def record(_conn: Any, _cur: Any, stmt: str, *_a: Any) -> None:
        seen.append(" ".join(stmt.split()))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
