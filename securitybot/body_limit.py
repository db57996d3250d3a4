"""Cap every request body at the edge, before any endpoint (or Bolt, or a form parser) buffers it.

Each path has a cap (the API's small JSON bodies, bigger NDJSON event batches, Slack's
payloads); everything else gets the default. A declared ``Content-Length`` over the cap is
refused with 413 before a byte is read. A chunked body (no length) is counted while the
endpoint reads it, and the request is refused as soon as the count passes the cap: the rest is
never read, so six concurrent 50 MiB uploads cost the server nothing but their first chunks.
Endpoints still read through ``api.common.read_body``; this makes the cap hold for every route,
including ones that call ``request.body()`` or ``request.form()``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from securitybot.asgi_headers import header


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(too_large_message(limit))
        self.limit = limit


def too_large_message(limit: int) -> str:
    return f"the body is over the {limit // 1024} KiB limit"


class BodyLimitMiddleware:
    """``routes`` are (path prefix, cap) pairs; the longest matching prefix wins."""

    def __init__(
        self, app: ASGIApp, *, default: int, routes: Sequence[tuple[str, int]] = ()
    ) -> None:
        self.app = app
        self.default = default
        self.routes = sorted(routes, key=lambda r: len(r[0]), reverse=True)

    def limit_for(self, path: str) -> int:
        for prefix, cap in self.routes:
            if path.startswith(prefix):
                return cap
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = header(scope, b"content-length")
        # More than 18 digits cannot be a real length and must not reach int() unbounded.
        if declared.isdigit():
            if len(declared) > 18 or int(declared) > limit:
                await _refuse(send, limit)
                return
            # The server reads exactly the declared length (what follows is the next request),
            # so the body cannot outgrow it: nothing to count. Only chunked bodies are counted,
            # and not wrapping every message keeps the API's hot path short.
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:  # an endpoint that streams its answer while reading: nothing to fix up
                raise
            await _refuse(send, limit)


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"error": "body_too_large", "message": too_large_message(limit)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            # The unread rest of the body makes the connection unusable for another request.
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
