"""The verifier interface: start a push, then poll it. Results are explicit, never booleans.

Error is not denial, and a preauth "allow" (a Duo bypass user) is never a confirmation: the
whole point is proof from a second device, so anything short of an approved push fails closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class StartResult(StrEnum):
    PUSHED = "pushed"
    NOT_ENROLLED = "not_enrolled"  # unknown user, no push-capable device, or a bypass user
    DENIED = "denied"  # Duo policy denies this user; the Okta user is suspended or locked out
    ERROR = "error"  # unreachable, erroring or rate limited: retry, then fail closed


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
    """``txid`` names the push (the alert's ``duo_txid``, at most 128 characters); ``handle``
    is what ``poll`` is given, opaque to the caller and kept in full (Okta: the poll link),
    the txid itself when None. ``sent``: the request that pushes to the phone was made, so
    even an error must not be retried into a second push."""

    result: StartResult
    txid: str | None = None
    detail: str = ""
    handle: str | None = None
    sent: bool = False

    @property
    def poll_handle(self) -> str | None:
        return self.handle if self.handle is not None else self.txid


@dataclass(frozen=True)
class PushPoll:
    status: PushStatus
    detail: str = ""


class Verifier(Protocol):
    """What every second factor provides (Duo, Okta Verify). ``name`` labels the audit log,
    the timeline and metrics. Implementations may also set ``username_mode`` (a
    ``duo.username`` value) to say how a Slack user becomes the provider's username."""

    name: str

    async def start_push(self, username: str, pushinfo: dict[str, str]) -> PushStart: ...

    async def poll(self, txid: str) -> PushPoll:
        """``txid``: the push's ``PushStart.poll_handle``."""
        ...

    def saturated(self) -> bool:
        """True while a poll could only answer "still waiting" without asking the provider
        (Duo: every long-poll slot is held by a push waiting on its phone)."""
        ...

    def close(self) -> None:
        """Stop waiting on Duo: polls in flight return WAITING at once, so shutdown never waits
        for a long-poll (the push is polled again after the restart)."""


# How the timeline and escalation posts name each provider.
PROVIDER_LABELS = {"duo": "Duo", "okta": "Okta Verify"}


def provider_named(text: str, actor: str, details: Mapping[str, Any]) -> str:
    """A timeline line naming the provider that answered: entries were written with "Duo" in
    mind, and the audit row's ``verifier`` detail (or its actor) says which one it really was."""
    provider = str(details.get("verifier") or actor)
    label = PROVIDER_LABELS.get(provider)
    return text.replace("Duo", label) if label else text
