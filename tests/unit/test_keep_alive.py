"""A sender's or a load balancer's pooled connection must not be closed under it: uvicorn's own
keep-alive is 5 s, shorter than what clients and proxies keep an idle connection for (AWS ALB
60 s, nginx 60 s). A request sent on a connection the server is closing at that moment fails
with "Server disconnected without sending a response" (a 502 behind a proxy), and a POST is not
retried by the sender's client: seen in our own tests under load."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from securitybot.config import Settings
from securitybot.service import uvicorn_config
from tests.unit.test_json_logging import free_port
from tests.uvicorn_thread import serving

REQUEST = b"GET /ok HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n"


async def ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


@contextmanager
def _ok_served(settings: Settings) -> Iterator[int]:
    app = Starlette(routes=[Route("/ok", ok)])
    with serving(uvicorn_config(app, settings, port=free_port())) as server:
        yield server.config.port


def _ask(conn: socket.socket) -> bytes:
    conn.sendall(REQUEST)
    answer = b""
    while not answer.endswith(b"ok"):
        chunk = conn.recv(4096)
        if not chunk:
            return answer  # closed by the server
        answer += chunk
    return answer


def test_a_connection_idle_longer_than_uvicorns_five_seconds_is_still_served() -> None:
    with _ok_served(Settings()) as port, socket.create_connection(("127.0.0.1", port)) as conn:
        conn.settimeout(10)
        assert _ask(conn).startswith(b"HTTP/1.1 200")
        time.sleep(6.0)  # a sender's pool keeps it; uvicorn's default had closed it at 5 s
        assert _ask(conn).startswith(b"HTTP/1.1 200")


def test_the_keep_alive_is_configurable_and_outlives_the_common_proxies() -> None:
    default = uvicorn_config(Starlette(), Settings(), port=free_port())
    assert default.timeout_keep_alive == 75  # above ALB's and nginx's 60 s idle timeouts
    shorter = Settings.model_validate({"server": {"keep_alive_timeout": "30s"}})
    assert uvicorn_config(Starlette(), shorter, port=free_port()).timeout_keep_alive == 30
