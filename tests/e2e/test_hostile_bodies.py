"""Big uploads to a real server (uvicorn, real sockets) are refused without being read.

Six clients stream 50 MiB each at once, chunked (no Content-Length), to ``/slack/events`` and to
the alerts API. Each must get a 413 long before it has sent its body: the server stops reading
at the cap, so it never holds more than the cap and uvicorn's small read buffer per request.
What a client manages to send is bounded by the cap plus the kernel's socket buffers.
"""

from __future__ import annotations

import re
import select
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

from tests.e2e.harness import TOKEN, Bot

MiB = 1024 * 1024
CHUNK = b"x" * (64 * 1024)
FRAME = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)


def stream_50_mib(base: str, path: str, headers: dict[str, str]) -> tuple[int, int]:
    """(status the server answered, bytes of body sent before it did)."""
    url = urlparse(base)
    head = f"POST {path} HTTP/1.1\r\nHost: bot\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sent = 0
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(head.encode())
        try:
            while sent < 50 * MiB and not select.select([sock], [], [], 0)[0]:
                sock.sendall(FRAME)
                sent += len(CHUNK)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what it answered is waiting to be read
        status_line = sock.recv(64).split(b"\r\n", 1)[0]
    return int(status_line.split()[1]), sent


def test_six_concurrent_50_mib_uploads_are_refused_early(bot: Bot) -> None:
    slack = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00",
             "Content-Type": "application/json"}  # fmt: skip
    api = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    jobs = [("/slack/events", slack)] * 5 + [("/api/v1/alerts", api)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(lambda job: stream_50_mib(bot.base, *job), jobs))
    assert [status for status, _ in results] == [413] * 6
    assert all(sent < 20 * MiB for _, sent in results), results
    assert bot.http.get("/healthz").status_code == 200  # and the server is fine


def raw_exchange(base: str, request: bytes) -> bytes:
    """Send ``request`` as it is and return everything the server answers until it closes."""
    url = urlparse(base)
    answer = b""
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(request)  # no half-close: uvicorn drops a connection at end of input
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def test_a_declared_length_bounds_the_body_the_service_sees(bot: Bot) -> None:
    # The body cap counts only chunked bodies: with a Content-Length, the server hands the
    # application exactly that many bytes. What is sent past them is the next request (here a
    # health check), never more body: had it been appended, the JSON would not parse (a 400).
    alert = b'{"kind": "sensitive_command", "user": "alice@example.com", "title": "flurb"}'
    head = (
        f"POST /api/v1/alerts HTTP/1.1\r\nHost: bot\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(alert)}\r\n\r\n"
    ).encode()
    then = b"GET /healthz HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n\r\n"
    answer = raw_exchange(bot.base, head + alert + then)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)  # bodies end without a newline
    assert statuses == [b"201", b"200"], answer[:600]


def test_a_declared_length_with_chunked_encoding_is_refused_by_the_server(bot: Bot) -> None:
    # Both framings at once is the classic request-smuggling shape: refused before the app.
    head = (
        f"POST /api/v1/alerts HTTP/1.1\r\nHost: bot\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    answer = raw_exchange(bot.base, head + FRAME * 32 + b"0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert bot.http.get("/healthz").status_code == 200
