"""The body cap at the ASGI edge: refuse early, never read (or buffer) what is over the cap."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from securitybot.body_limit import BodyLimitMiddleware

MiB = 1024 * 1024


async def echo_size(scope: Scope, receive: Receive, send: Send) -> None:
    body = await Request(scope, receive).body()
    await JSONResponse({"size": len(body)})(scope, receive, send)


def http_scope(path: str, headers: dict[str, str] | None = None) -> Scope:
    return {
        "type": "http", "method": "POST", "path": path, "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
    }  # fmt: skip


class Upload:
    """A client sending ``chunks`` chunks of ``size`` bytes; counts what the server pulled."""

    def __init__(self, chunks: int, size: int = 64 * 1024) -> None:
        self.left, self.size, self.pulled = chunks, size, 0
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.left == 0:
            return {"type": "http.disconnect"}
        self.left -= 1
        self.pulled += self.size
        return {"type": "http.request", "body": b"x" * self.size, "more_body": self.left > 0}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def json(self) -> dict[str, object]:
        return dict(json.loads(b"".join(m.get("body", b"") for m in self.sent[1:])))


def limited() -> BodyLimitMiddleware:
    return BodyLimitMiddleware(
        echo_size, default=64 * 1024, routes=[("/api/v1/events", 10 * MiB), ("/slack/", MiB)]
    )


async def test_a_declared_length_over_the_cap_is_refused_before_a_byte_is_read() -> None:
    upload = Upload(chunks=800)  # 50 MiB
    await limited()(http_scope("/slack/events", {"content-length": str(50 * MiB)}),
                    upload.receive, upload.send)  # fmt: skip
    assert upload.status == 413 and upload.json["error"] == "body_too_large"
    assert upload.pulled == 0


async def test_an_absurd_declared_length_is_refused_not_parsed() -> None:
    upload = Upload(chunks=1)
    await limited()(http_scope("/api/v1/alerts", {"content-length": "9" * 5000}),
                    upload.receive, upload.send)  # fmt: skip
    assert upload.status == 413 and upload.pulled == 0


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_cap() -> None:
    upload = Upload(chunks=800)  # 50 MiB, no Content-Length
    await limited()(http_scope("/slack/events"), upload.receive, upload.send)
    assert upload.status == 413
    assert upload.pulled <= MiB + 64 * 1024  # the cap and one chunk, not the 50 MiB


async def test_each_path_gets_its_own_cap_and_bodies_under_it_pass() -> None:
    small = Upload(chunks=2)  # 128 KiB: over the default, under the events cap
    await limited()(http_scope("/dashboard/login"), small.receive, small.send)
    assert small.status == 413 and small.pulled <= 128 * 1024
    batch = Upload(chunks=2)
    await limited()(http_scope("/api/v1/events"), batch.receive, batch.send)
    assert batch.status == 200 and batch.json == {"size": 128 * 1024}
