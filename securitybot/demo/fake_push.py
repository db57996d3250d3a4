"""The pending-push bookkeeping both fake second factors (Duo, Okta Verify) share: which pushes
were started, which still wait for an answer, and waiting for one to appear."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Generic, Protocol, TypeVar


class _Push(Protocol):
    @property
    def waiting(self) -> bool: ...


P = TypeVar("P", bound=_Push)


class PushBook(Generic[P]):
    """Mixin for a fake that keeps its pushes in ``_pushes`` (txid -> push) under ``_lock``,
    with ``_changed`` a Condition on that lock notified whenever a push starts or changes."""

    # Who sends the push, for the TimeoutError of wait_for_push: "Duo", "Okta Verify".
    push_vendor = "second-factor"
    _pushes: dict[str, P]
    _lock: threading.Lock
    _changed: threading.Condition

    def _expire_pushes(self) -> object:
        """Time out the pushes left unanswered too long (lock held)."""
        raise NotImplementedError

    def pending_pushes(self) -> list[P]:
        with self._lock:
            self._expire_pushes()
            return [p for p in self._pushes.values() if p.waiting]

    def started_pushes(self) -> list[P]:
        """Every push started so far, answered or not."""
        with self._lock:
            return list(self._pushes.values())

    def wait_for_push(self, timeout: float = 5.0) -> P:
        """Block until some push is waiting for an answer; handy with async app code."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                waiting = [p for p in self._pushes.values() if p.waiting]
                if waiting:
                    return waiting[0]
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"no {self.push_vendor} push became pending")
                self._changed.wait(deadline - time.monotonic())

    async def wait_for_push_async(self, timeout: float = 5.0) -> P:
        return await asyncio.to_thread(self.wait_for_push, timeout)


__all__ = ["PushBook"]
