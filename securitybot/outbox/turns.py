"""Per-alert turns: the outbox jobs of one alert run one after another, in claim order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0  # holding or waiting: the entry lives while anyone needs it


class AlertTurns:
    """A lock per alert, shared by everyone who holds or waits for it.

    An entry is dropped only when nobody holds or waits for it. (Dropping it as soon as it
    was unlocked let a job that arrived while the next one was being handed the lock make a
    fresh lock and run beside it.)
    """

    def __init__(self) -> None:
        self._turns: dict[int, _Turn] = {}

    @contextlib.asynccontextmanager
    async def hold(self, alert_ids: Iterable[int]) -> AsyncIterator[None]:
        """Each of ``alert_ids``' turn, taken in id order (so two holders of several alerts
        cannot wait on each other)."""
        taken: list[tuple[int, _Turn]] = []
        for alert_id in sorted(set(alert_ids)):
            turn = self._turns.setdefault(alert_id, _Turn())
            turn.users += 1
            taken.append((alert_id, turn))
        try:
            async with contextlib.AsyncExitStack() as stack:
                for _, turn in taken:
                    await stack.enter_async_context(turn.lock)
                yield
        finally:
            for alert_id, turn in taken:
                turn.users -= 1
                if turn.users == 0 and self._turns.get(alert_id) is turn:
                    del self._turns[alert_id]
