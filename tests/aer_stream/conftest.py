"""JetStream tests need the NATS server every development and CI machine runs at :4222."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

from bench.aer_cluster import NATS_URL

# The bot with AER on and the fake Slack/Duo it talks to, as in the in-process AER tests.
from tests.aer_e2e.conftest import fd, fs, make_bot  # noqa: F401


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
