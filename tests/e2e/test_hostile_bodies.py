"""Big uploads to a real server (uvicorn, real sockets) are refused without being read.

Six clients stream 50 MiB each at once, chunked (no Content-Length), to ``/slack/events`` and to
the alerts API. Each must get a 413 long before it has sent its body: the server stops reading
at the cap, so it never holds more than the cap and uvicorn's small read buffer per request.
What a client manages to send is bounded by the cap plus the kernel's socket buffers.
"""

from __future__ import annotations

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
