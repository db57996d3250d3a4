"""JetStream tests need the NATS server every development and CI machine runs at :4222; tests
that stop NATS or require credentials start their own (tests/aer_stream/natsd.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from bench.aer_cluster import NATS_URL, SIGNING_KEY
from securitybot.aer.worker import Worker
from securitybot.config import Settings
from securitybot.store.db import Database

# The bot with AER on and the fake Slack/Duo it talks to, as in the in-process AER tests.
from tests.aer_e2e.conftest import fd, fs, make_bot  # noqa: F401
from tests.aer_stream.natsd import NatsServer


@pytest.fixture
def nats_url() -> str:
    u = urlparse(NATS_URL)
    try:
        socket.create_connection((u.hostname or "127.0.0.1", u.port or 4222), timeout=2).close()
    except OSError as exc:
        msg = f"NATS at {NATS_URL} is unreachable ({exc})"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg + " and CI=true: JetStream tests must run", pytrace=False)
        pytest.skip(msg + " (set CI=true to make this a failure)")
    return NATS_URL


def stream_config(url: str, **extra: Any) -> dict[str, Any]:
    """An aer.stream of the test's own (unique stream and subjects)."""
    run = uuid.uuid4().hex[:10]
    cfg = {"url": url, "stream": f"AERT{run}", "subject": f"t{run}.aer.events",
           "partitions": 4, "publish_timeout": "2s", "signing_key": SIGNING_KEY}  # fmt: skip
    return cfg | extra


async def drop_stream(url: str, name: str) -> None:
    import contextlib

    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(url)
    with contextlib.suppress(NotFoundError):
        await nc.jetstream().delete_stream(name)
    await nc.close()


@pytest.fixture
def natsd(tmp_path: Path) -> Iterator[NatsServer]:
    """A nats-server with JetStream of this test's own, started."""
    (tmp_path / "natsd").mkdir()
    server = NatsServer(tmp_path / "natsd").start()
    yield server
    server.stop()


@contextmanager
def running_worker(settings: Settings, db_url: str) -> Iterator[Worker]:
    """``securitybot aer worker`` in a thread of this process (so it runs on either store)."""
    db = Database.from_url(db_url)
    worker = Worker(settings, db)
    loop = asyncio.new_event_loop()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(worker.run())
        except BaseException as exc:  # surfaced by the test, not lost in the thread
            failed.append(exc)

    thread = threading.Thread(target=run, name="aer-worker", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(worker.runners) < settings.aer.stream.partitions:  # type: ignore[union-attr]
            assert thread.is_alive() and time.monotonic() < deadline, (
                "worker did not start",
                failed,
            )
            time.sleep(0.05)
        yield worker
    finally:
        loop.call_soon_threadsafe(worker.stopping.set)
        thread.join(timeout=30)
        loop.close()
        db.dispose()
    assert not failed, failed


RunWorker = Callable[[Settings, str], AbstractContextManager[Worker]]
