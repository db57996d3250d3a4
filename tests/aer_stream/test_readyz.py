"""/readyz with aer.stream on: ready only while JetStream can take events, and again once it
is back. A NATS server of the test's own goes down and up (the shared one stays up)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bench.common import free_port
from tests.aer_e2e.conftest import MakeBot
from tests.children import die_with_parent

NATS_SERVER = "/usr/sbin/nats-server"
# aer.stream needs a signing key (32+ characters); a short timeout keeps a refusal quick.
FAST = {"publish_timeout": "1s", "signing_key": "readyz-signing-key-0123456789abcdef"}


class OwnNats:
    def __init__(self, port: int, store: Path) -> None:
        self.port, self.store = port, store
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent,
        )  # fmt: skip
        _until(lambda: _listening(self.port), "nats-server listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[OwnNats]:
    if shutil.which(NATS_SERVER) is None:
        pytest.fail(f"{NATS_SERVER} is missing (.ci/run installs Debian's nats-server)")
    nats = OwnNats(free_port(), tmp_path / "js")
    nats.start()
    yield nats
    nats.stop()


def _ready(http: httpx.Client) -> tuple[int, dict[str, str]]:
    resp = http.get("/readyz")
    body = resp.json()
    # Each check that fails says why (issue 24), in one line.
    reasons = body.pop("reasons", {})
    assert set(reasons) == {k for k, v in body.items() if v == "unreachable"}, reasons
    assert all(isinstance(r, str) and r and "\n" not in r for r in reasons.values())
    return resp.status_code, body


def test_readyz_follows_jetstream_down_and_back(make_bot: MakeBot, own_nats: OwnNats) -> None:
    url = f"nats://127.0.0.1:{own_nats.port}"
    bot = make_bot(stream={"url": url, "stream": "READYZ", "subject": "readyz.events",
                           "partitions": 2, **FAST})  # fmt: skip
    assert _ready(bot.http) == (200, {"status": "ready", "database": "ok", "nats": "ok"})

    own_nats.stop()
    _until(lambda: _ready(bot.http)[0] == 503, "/readyz to notice NATS is gone")
    assert _ready(bot.http) == (503, {"status": "unavailable", "database": "ok",
                                      "nats": "unreachable"})  # fmt: skip
    # Liveness is not readiness: a replica waiting for NATS must not be restarted for it.
    assert bot.http.get("/healthz").status_code == 200

    own_nats.start()
    _until(lambda: _ready(bot.http)[0] == 200, "/readyz to see NATS back", timeout=30)


def test_readyz_refuses_when_nats_was_never_there(make_bot: MakeBot) -> None:
    bot = make_bot(stream={"url": f"nats://127.0.0.1:{free_port()}", "stream": "NEVER",
                           "subject": "never.events", **FAST})  # fmt: skip
    assert _ready(bot.http) == (503, {"status": "unavailable", "database": "ok",
                                      "nats": "unreachable"})  # fmt: skip
