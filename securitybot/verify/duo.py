"""Duo push through duo_client's Auth API, run off the event loop in a bounded thread pool."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import duo_client

from securitybot import metrics
from securitybot.config import DuoConfig
from securitybot.verify.base import PushPoll, PushStart, PushStatus, StartResult

logger = logging.getLogger(__name__)

_NETWORK_ERRORS = (OSError, ssl.SSLError, socket.timeout, RuntimeError, ValueError, KeyError)


class DuoVerifier:
    name = "duo"

    def __init__(self, cfg: DuoConfig, *, max_workers: int = 16) -> None:
        assert cfg.configured and cfg.skey is not None and cfg.ikey is not None
        host, port = cfg.host_and_port
        kwargs: dict[str, Any] = {"timeout": cfg.timeout}
        if port is not None:
            # duo_client signs the bare host; the port must travel separately.
            kwargs["port"] = port
        if cfg.ca_certs:
            kwargs["ca_certs"] = cfg.ca_certs
        self._cfg = cfg
        self._kwargs = dict(ikey=cfg.ikey, skey=cfg.skey.get_secret_value(), host=host, **kwargs)
        # auth_status can long-poll for up to a minute: many pushes may wait at once, and none
        # of them may block the event loop.
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="duo")

    def _client(self) -> duo_client.Auth:
        # duo_client objects are not thread-safe (one HTTP connection each): one per call.
        return duo_client.Auth(**self._kwargs)

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _start_sync(self, username: str, pushinfo: dict[str, str]) -> PushStart:
        client = self._client()
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
            return PushStart(StartResult.ERROR, detail=f"auth: {type(exc).__name__}: {exc}")
        txid = reply.get("txid")
        if not txid:
            return PushStart(StartResult.ERROR, detail="Duo returned no txid")
        return PushStart(StartResult.PUSHED, txid=str(txid))

    def _poll_sync(self, txid: str) -> PushPoll:
        try:
            status = self._client().auth_status(txid)
        except _NETWORK_ERRORS as exc:
            return PushPoll(PushStatus.ERROR, detail=f"auth_status: {type(exc).__name__}: {exc}")
        # duo_client folds Duo's answer into waiting/success flags plus Duo's status string.
        if status.get("success"):
            return PushPoll(PushStatus.APPROVED, detail=status.get("status_msg", ""))
        if status.get("waiting"):
            return PushPoll(PushStatus.WAITING)
        state = str(status.get("status", ""))
        if state == "timeout":
            return PushPoll(PushStatus.TIMEOUT, detail=status.get("status_msg", ""))
        return PushPoll(PushStatus.DENIED, detail=state or "deny")

    async def start_push(self, username: str, pushinfo: dict[str, str]) -> PushStart:
        with metrics.DUO_LATENCY.labels("start_push").time():
            result: PushStart = await self._run(self._start_sync, username, pushinfo)
        return result

    async def poll(self, txid: str) -> PushPoll:
        with metrics.DUO_LATENCY.labels("auth_status").time():
            result: PushPoll = await self._run(self._poll_sync, txid)
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class UnconfiguredVerifier:
    """Used when Duo is not configured: nobody can be verified, so everybody escalates."""

    name = "none"

    async def start_push(self, username: str, pushinfo: dict[str, str]) -> PushStart:
        return PushStart(StartResult.NOT_ENROLLED, detail="Duo is not configured")

    async def poll(self, txid: str) -> PushPoll:
        return PushPoll(PushStatus.ERROR, detail="Duo is not configured")
