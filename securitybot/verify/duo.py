"""Duo push through Duo's Auth API, on one pooled asyncio HTTP client (``duo_api``).

What Duo documents (https://duo.com/docs/authapi, "/auth_status"): the endpoint "long-polls":
when no status update is ready it holds the request until there is one, and a push times out
after 60 seconds, so one ``auth_status`` call can legitimately take about a minute. Its HTTP
timeout must outlast that hold, or a push approved after the short timeout reads as an error.
``result`` (``allow``/``deny``/``waiting``) is the decision; ``status`` says why. Duo also says
enumerations "may gain new values at any time", so every value not listed below fails closed.

Every waiting push holds its own long-poll (a coroutine and a kept-alive connection), so an
approval is seen as soon as Duo answers it, however many other people are slow to answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from securitybot import metrics
from securitybot.config import DuoConfig
from securitybot.verify.base import PushPoll, PushStart, PushStatus, StartResult
from securitybot.verify.duo_api import DuoApiError, DuoAuthApi

logger = logging.getLogger(__name__)

# Duo Push times out after 60 s; until then auth_status may hold the request open.
DUO_PUSH_HOLD = 60.0
# Long-polls held at once; beyond this a poll says "still waiting" and is asked again shortly.
# Each is a coroutine and a socket: thousands are cheap.
MAX_HELD_POLLS = 10_000
QUICK_ANSWER = 1.0  # seconds: a "waiting" this fast was not held (a push's first status)

# auth_status ``status`` values Duo documents, by the ``result`` they come with.
_WAITING = frozenset({"pushed", "push_failed", "calling", "answered"})  # still in progress
_REFUSED = frozenset({"deny", "locked_out", "sent"})  # declined, account locked, passcodes sent
_UNREACHABLE = (httpx.HTTPError, OSError)


def _failure(call: str, exc: Exception) -> str:
    if isinstance(exc, DuoApiError):
        return f"{call}: {exc}"
    return f"{call}: {type(exc).__name__}: {exc}"


def push_poll_from(reply: Mapping[str, Any]) -> PushPoll:
    """Map one ``/auth/v2/auth_status`` response to a ``PushPoll``: approval only for
    ``result: allow`` with ``status: allow``; anything undocumented is an error or a denial."""
    result, status = str(reply.get("result", "")), str(reply.get("status", ""))
    message = str(reply.get("status_msg", ""))
    detail = f"{status}: {message}" if message else status
    if result == "allow":
        if status == "allow":
            return PushPoll(PushStatus.APPROVED, detail=message)
        if status == "bypass":
            # A bypass policy lets the user in without touching a device: no proof at all.
            return PushPoll(PushStatus.BYPASS, detail="Duo bypass: no device proof")
        return PushPoll(PushStatus.ERROR, detail=f"undocumented Duo status {status!r} (allow)")
    if status == "timeout" and result in ("deny", "waiting"):
        return PushPoll(PushStatus.TIMEOUT, detail=message)
    if result == "waiting":
        if status in _WAITING:
            return PushPoll(PushStatus.WAITING, detail=detail)
        return PushPoll(PushStatus.ERROR, detail=f"undocumented Duo status {status!r} (waiting)")
    if result == "deny":
        if status == "fraud":
            return PushPoll(PushStatus.FRAUD, detail=message or "reported as fraud")
        if status in _REFUSED:
            return PushPoll(PushStatus.DENIED, detail=detail)
        # Duo's decision is "deny" whatever the new status means: honour it.
        return PushPoll(PushStatus.DENIED, detail=f"undocumented Duo status {status!r} (deny)")
    return PushPoll(PushStatus.ERROR, detail=f"undocumented Duo result {result!r}")


class DuoVerifier:
    name = "duo"

    def __init__(self, cfg: DuoConfig, *, max_polls: int = MAX_HELD_POLLS) -> None:
        assert cfg.configured and cfg.skey is not None and cfg.ikey is not None
        self.username_mode = cfg.username
        self._cfg = cfg
        self._api = DuoAuthApi(cfg)
        # The documented hold plus the allowance any other request gets.
        self.poll_timeout = DUO_PUSH_HOLD + cfg.timeout
        self._max_polls = max_polls
        self._polls = 0  # long-polls in flight (touched only on the event loop)
        self._closing = asyncio.Event()

    async def _start(self, username: str, pushinfo: dict[str, str]) -> PushStart:
        try:
            pre = await self._api.call("POST", "/auth/v2/preauth", {"username": username})
        except DuoApiError as exc:
            if exc.code == 40002 or "Invalid request parameters" in str(exc):
                return PushStart(StartResult.NOT_ENROLLED, detail="Duo does not know this user")
            return PushStart(StartResult.ERROR, detail=_failure("preauth", exc))
        except _UNREACHABLE as exc:
            return PushStart(StartResult.ERROR, detail=_failure("preauth", exc))
        if not isinstance(pre, Mapping):
            return PushStart(StartResult.ERROR, detail="preauth: malformed response")
        result = pre.get("result")
        if result == "enroll":
            return PushStart(StartResult.NOT_ENROLLED, detail="user is not enrolled in Duo")
        if result == "deny":
            return PushStart(StartResult.DENIED, detail=pre.get("status_msg", "denied by Duo"))
        if result == "allow":
            # A bypass user would "pass" without any device: that proves nothing here.
            return PushStart(StartResult.NOT_ENROLLED, detail="Duo bypass user: no device proof")
        if result != "auth":
            return PushStart(StartResult.ERROR, detail=f"unexpected preauth result {result!r}")
        devices = pre.get("devices") or []
        if not any("push" in (d.get("capabilities") or []) for d in devices):
            return PushStart(StartResult.NOT_ENROLLED, detail="no push-capable device")
        params = {"factor": "push", "username": username, "device": "auto", "async": "1",
                  "pushinfo": urlencode(pushinfo), "type": "Securitybot"}  # fmt: skip
        try:
            reply = await self._api.call("POST", "/auth/v2/auth", params)
        except (DuoApiError, *_UNREACHABLE) as exc:
            # Duo may have pushed before the answer was lost: never push a second time.
            return PushStart(StartResult.ERROR, detail=_failure("auth", exc), sent=True)
        txid = reply.get("txid") if isinstance(reply, Mapping) else None
        if not txid:
            return PushStart(StartResult.ERROR, detail="Duo returned no txid", sent=True)
        self._api.pin(str(txid), username)
        return PushStart(StartResult.PUSHED, txid=str(txid), sent=True)

    async def start_push(self, username: str, pushinfo: dict[str, str]) -> PushStart:
        if self._closing.is_set():
            # The job fails this run and is retried after the restart.
            raise RuntimeError("the Duo verifier is closed")
        with (
            metrics.DUO_LATENCY.labels("start_push").time(),
            metrics.VERIFY_LATENCY.labels(self.name, "start_push").time(),
        ):
            return await self._start(username, pushinfo)

    def saturated(self) -> bool:
        return self._polls >= self._max_polls

    async def poll(self, txid: str) -> PushPoll:
        if self._closing.is_set():
            return PushPoll(PushStatus.WAITING, detail="shutting down")
        if self.saturated():
            return PushPoll(PushStatus.WAITING, detail="all Duo long-poll slots busy")
        self._polls += 1
        try:
            with (
                metrics.DUO_LATENCY.labels("auth_status").time(),  # includes Duo's hold
                metrics.VERIFY_LATENCY.labels(self.name, "auth_status").time(),
            ):
                polled = await self._hold(txid)
        finally:
            self._polls -= 1
        if polled.status not in (PushStatus.WAITING, PushStatus.ERROR):
            self._api.unpin(txid)  # the push is decided: nobody polls it again
        return polled

    async def _hold(self, txid: str) -> PushPoll:
        """Ask until Duo has news beyond "still waiting", the hold ends, or shutdown. Duo
        answers a push's first status at once ("pushed") and holds the next call until the
        phone answers: asking again at once, instead of going back to the outbox for a
        second, sees the approval the moment it happens. Two quick "waiting"s in a row mean
        Duo is not holding: go back to the outbox then (no busy loop on Duo)."""
        deadline = time.monotonic() + self.poll_timeout
        quick = 0
        while True:
            asked = time.monotonic()
            polled = await self._poll_or_close(txid)
            if polled.status != PushStatus.WAITING or self._closing.is_set():
                return polled
            quick = quick + 1 if time.monotonic() - asked < QUICK_ANSWER else 0
            if quick >= 2 or time.monotonic() > deadline:
                return polled

    async def _poll_or_close(self, txid: str) -> PushPoll:
        # Not duo_client's auth_status(): it folds the reply into success/waiting flags, and
        # "success" is true for a bypass too. We need Duo's own result and status.
        call = self._api.call("GET", "/auth/v2/auth_status", {"txid": txid},
                              timeout=self.poll_timeout)  # fmt: skip
        polled = asyncio.ensure_future(call)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            await asyncio.wait({polled, closing}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            polled.cancel()  # let go of Duo's hold too, not only of waiting for it
            raise
        finally:
            closing.cancel()
        if not polled.done():
            # Shutting down: Duo keeps the push's result for the next process to poll.
            polled.cancel()
            with contextlib.suppress(asyncio.CancelledError, *_UNREACHABLE, DuoApiError):
                await polled
            return PushPoll(PushStatus.WAITING, detail="shutting down")
        try:
            reply = polled.result()
        except (DuoApiError, *_UNREACHABLE) as exc:
            return PushPoll(PushStatus.ERROR, detail=_failure("auth_status", exc))
        if not isinstance(reply, Mapping):
            return PushPoll(PushStatus.ERROR, detail="auth_status: malformed response")
        return push_poll_from(reply)

    def close(self) -> None:
        """Call on the event loop. Held polls return at once; nothing new reaches Duo."""
        self._closing.set()
        with contextlib.suppress(RuntimeError):  # no loop running: nothing is in flight
            asyncio.get_running_loop().create_task(self._api.aclose())


class UnconfiguredVerifier:
    """Used when the second factor is not configured: nobody can be verified, so everybody
    escalates. ``provider`` names what is missing ("Duo", "Okta")."""

    name = "none"

    def __init__(self, provider: str = "Duo") -> None:
        self._detail = f"{provider} is not configured"

    async def start_push(self, username: str, pushinfo: dict[str, str]) -> PushStart:
        return PushStart(StartResult.NOT_ENROLLED, detail=self._detail)

    async def poll(self, txid: str) -> PushPoll:
        return PushPoll(PushStatus.ERROR, detail=self._detail)

    def saturated(self) -> bool:
        return False

    def close(self) -> None:
        pass
