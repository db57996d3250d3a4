"""Duo push through duo_client's Auth API, run off the event loop in bounded thread pools.

What Duo documents (https://duo.com/docs/authapi, "/auth_status"): the endpoint "long-polls":
when no status update is ready it holds the request until there is one, and a push times out
after 60 seconds, so one ``auth_status`` call can legitimately take about a minute. Its HTTP
timeout must outlast that hold, or a push approved after the short timeout reads as an error.
``result`` (``allow``/``deny``/``waiting``) is the decision; ``status`` says why. Duo also says
enumerations "may gain new values at any time", so every value not listed below fails closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import duo_client

from securitybot import metrics
from securitybot.config import DuoConfig
from securitybot.verify.base import PushPoll, PushStart, PushStatus, StartResult

logger = logging.getLogger(__name__)

_NETWORK_ERRORS = (OSError, ssl.SSLError, socket.timeout, RuntimeError, ValueError, KeyError)

# Duo Push times out after 60 s; until then auth_status may hold the request open.
DUO_PUSH_HOLD = 60.0

# auth_status ``status`` values Duo documents, by the ``result`` they come with.
_WAITING = frozenset({"pushed", "push_failed", "calling", "answered"})  # still in progress
_REFUSED = frozenset({"deny", "locked_out", "sent"})  # declined, account locked, passcodes sent


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

    def __init__(self, cfg: DuoConfig, *, max_workers: int = 16, max_polls: int = 32) -> None:
        assert cfg.configured and cfg.skey is not None and cfg.ikey is not None
        self.username_mode = cfg.username
        host, port = cfg.host_and_port
        kwargs: dict[str, Any] = {}
        if port is not None:
            # duo_client signs the bare host; the port must travel separately.
            kwargs["port"] = port
        if cfg.ca_certs:
            kwargs["ca_certs"] = cfg.ca_certs
        self._cfg = cfg
        self._kwargs = dict(ikey=cfg.ikey, skey=cfg.skey.get_secret_value(), host=host, **kwargs)
        # The documented hold plus the allowance any other request gets.
        self.poll_timeout = DUO_PUSH_HOLD + cfg.timeout
        # preauth/auth answer at once and share a small pool. auth_status may be held for a
        # minute, so each long-poll gets its own daemon thread (at most max_polls): waiting
        # pushes never delay a new user's push, and a held poll never delays process exit.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="duo")
        self._max_polls = max_polls
        self._polls = 0  # long-polls in flight (touched only on the event loop)
        self._closing = asyncio.Event()

    def _client(self, timeout: float) -> duo_client.Auth:
        # duo_client objects are not thread-safe (one HTTP connection each): one per call.
        return duo_client.Auth(timeout=timeout, **self._kwargs)

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _start_sync(self, username: str, pushinfo: dict[str, str]) -> PushStart:
        client = self._client(self._cfg.timeout)
        try:
            pre = client.preauth(username=username)
        except RuntimeError as exc:
            # duo_client raises RuntimeError for HTTP 4xx/5xx with Duo's message.
            if "40002" in str(exc) or "Invalid request parameters" in str(exc):
                return PushStart(StartResult.NOT_ENROLLED, detail="Duo does not know this user")
            return PushStart(StartResult.ERROR, detail=f"preauth: {exc}")
        except _NETWORK_ERRORS as exc:
            return PushStart(StartResult.ERROR, detail=f"preauth: {type(exc).__name__}: {exc}")
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
        try:
            reply = client.auth(
                factor="push",
                username=username,
                device="auto",
                async_txn=True,
                pushinfo=urlencode(pushinfo),
                type="Securitybot",
            )
        except _NETWORK_ERRORS as exc:
            # Duo may have pushed before the answer was lost: never push a second time.
            detail = f"auth: {type(exc).__name__}: {exc}"
            return PushStart(StartResult.ERROR, detail=detail, sent=True)
        txid = reply.get("txid")
        if not txid:
            return PushStart(StartResult.ERROR, detail="Duo returned no txid", sent=True)
        return PushStart(StartResult.PUSHED, txid=str(txid), sent=True)

    def _poll_sync(self, txid: str) -> PushPoll:
        try:
            # Not duo_client's auth_status(): it folds the reply into success/waiting flags,
            # and "success" is true for a bypass too. We need Duo's own result and status.
            reply = self._client(self.poll_timeout).json_api_call(
                "GET", "/auth/v2/auth_status", {"txid": txid}
            )
        except _NETWORK_ERRORS as exc:
            return PushPoll(PushStatus.ERROR, detail=f"auth_status: {type(exc).__name__}: {exc}")
        if not isinstance(reply, Mapping):
            return PushPoll(PushStatus.ERROR, detail="auth_status: malformed response")
        return push_poll_from(reply)

    async def start_push(self, username: str, pushinfo: dict[str, str]) -> PushStart:
        with (
            metrics.DUO_LATENCY.labels("start_push").time(),
            metrics.VERIFY_LATENCY.labels(self.name, "start_push").time(),
        ):
            result: PushStart = await self._run(self._start_sync, username, pushinfo)
        return result

    def saturated(self) -> bool:
        return self._polls >= self._max_polls

    async def poll(self, txid: str) -> PushPoll:
        if self._closing.is_set():
            return PushPoll(PushStatus.WAITING, detail="shutting down")
        if self.saturated():
            # Every long-poll slot is held by a push still waiting on its phone: say "still
            # waiting" now instead of queueing behind them; the job polls again shortly.
            return PushPoll(PushStatus.WAITING, detail="all Duo long-poll slots busy")
        self._polls += 1
        try:
            with (
                metrics.DUO_LATENCY.labels("auth_status").time(),  # includes Duo's hold
                metrics.VERIFY_LATENCY.labels(self.name, "auth_status").time(),
            ):
                return await self._poll_or_close(txid)
        finally:
            self._polls -= 1

    async def _poll_or_close(self, txid: str) -> PushPoll:
        loop = asyncio.get_running_loop()
        polled: asyncio.Future[PushPoll] = loop.create_future()

        def deliver(result: PushPoll) -> None:
            if not polled.done():
                polled.set_result(result)

        def run() -> None:
            result = self._poll_sync(txid)
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
                loop.call_soon_threadsafe(deliver, result)

        threading.Thread(target=run, name="duo-poll", daemon=True).start()
        closing: asyncio.Future[Any] = loop.create_task(self._closing.wait())
        try:
            await asyncio.wait({polled, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
        if not polled.done():
            # Shutting down: Duo keeps the push's result for the next process to poll.
            return PushPoll(PushStatus.WAITING, detail="shutting down")
        return polled.result()

    def close(self) -> None:
        """Call on the event loop. Held polls return at once; nothing new reaches Duo."""
        self._closing.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


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
