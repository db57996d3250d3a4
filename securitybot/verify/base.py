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
    APPROVED = "approved"
    DENIED = "denied"  # includes "fraud" reports
    TIMEOUT = "timeout"  # Duo itself gave up waiting for the phone
    ERROR = "error"


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
