"""The verifier interface: start a push, then poll it. Results are explicit, never booleans.

Error is not denial, and a preauth "allow" (a Duo bypass user) is never a confirmation: the
whole point is proof from a second device, so anything short of an approved push fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class StartResult(StrEnum):
    PUSHED = "pushed"
    NOT_ENROLLED = "not_enrolled"  # unknown to Duo, no push-capable device, or a bypass user
    DENIED = "denied"  # Duo policy denies this user
    ERROR = "error"  # Duo unreachable or erroring: retry, then fail closed


class PushStatus(StrEnum):
    WAITING = "waiting"
    APPROVED = "approved"  # the user approved the push on their device: the only "yes"
    DENIED = "denied"  # declined, locked out, or any refusal Duo does not explain further
    FRAUD = "fraud"  # the user tapped "report fraud": the strongest compromise signal we get
    BYPASS = "bypass"  # Duo let the user through without a device: proves nothing
    TIMEOUT = "timeout"  # Duo itself gave up waiting for the phone
    ERROR = "error"  # unreachable, an error response, or an answer we do not recognise


@dataclass(frozen=True)
class PushStart:
    result: StartResult
    txid: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class PushPoll:
    status: PushStatus
    detail: str = ""


class Verifier(Protocol):
    name: str

    async def start_push(self, username: str, pushinfo: dict[str, str]) -> PushStart: ...

    async def poll(self, txid: str) -> PushPoll: ...

    def close(self) -> None:
        """Stop waiting on Duo: polls in flight return WAITING at once, so shutdown never waits
        for a long-poll (the push is polled again after the restart)."""
