"""Request ids: every HTTP request gets one (or keeps the caller's X-Request-ID), every log
line written while serving it carries it, and one access line per request records it."""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from securitybot.asgi_headers import header

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_SAFE = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
access_log = logging.getLogger("securitybot.access")
_PROBES = frozenset({"/metrics", "/healthz", "/readyz"})


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get() or "-"
        return True


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = header(scope, b"x-request-id").decode("latin-1")
        # A caller's id is kept only if it is harmless to echo and to log.
        rid = given if _SAFE.match(given) else secrets.token_hex(8)  # as uuid4().hex[:16], cheaper
        token = REQUEST_ID.set(rid)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # The path only: query strings can carry a source token (Splunk, Falco adapters).
            # Scrapes and probes every few seconds would drown the log at INFO: DEBUG if fine.
            probe = scope.get("path") in _PROBES and status < 400
            access_log.log(
                logging.DEBUG if probe else logging.INFO,
                "%s %s %s %.1fms", scope.get("method"), scope.get("path"), status,
                (time.perf_counter() - started) * 1000,
                extra={"request_id": rid, "status": status},
            )  # fmt: skip
            REQUEST_ID.reset(token)
