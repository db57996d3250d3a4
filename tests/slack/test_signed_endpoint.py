"""``/slack/events`` checks Slack's signature before anything parses the body, and caps it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from securitybot.config import Settings
from securitybot.demo import sign
from securitybot.service import build_service
from securitybot.store.db import Database

SECRET = "slack-signing-secret-for-tests"
MiB = 1024 * 1024


@pytest.fixture
def app(db: Database, db_url: str) -> Starlette:
    settings = Settings.model_validate(
        {
            "database": {"url": db_url},
            # Nothing here calls Slack: every request is refused or answered by Bolt itself.
            "slack": {"bot_token": "xoxb-test", "signing_secret": SECRET,
                      "api_url": "http://127.0.0.1:9/api/"},
            "scheduler": {"enabled": False},
        }
    )  # fmt: skip
    return build_service(settings, db)[1]


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize(
    ("body", "ctype"),
    [("payload=x", "application/x-www-form-urlencoded"), ('{"a":', "application/json")],
)
def test_unsigned_garbage_is_a_401_not_a_500(client: TestClient, body: str, ctype: str) -> None:
    resp = client.post("/slack/events", content=body, headers={"Content-Type": ctype})
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == "invalid_signature"


def test_a_wrong_stale_or_junk_signature_is_a_401(client: TestClient) -> None:
    body = "payload=x"
    wrong = sign("not-the-secret", body)
    stale = sign(SECRET, body, int(time.time()) - 301)
    junk = sign(SECRET, body) | {"X-Slack-Request-Timestamp": "9" * 40}
    for headers in (wrong, stale, junk):
        resp = client.post("/slack/events", content=body, headers=headers)
        assert resp.status_code == 401, resp.text
    assert "five-minute" in client.post("/slack/events", content=body, headers=stale).text


def test_a_signed_request_still_reaches_bolt(client: TestClient) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"})
    resp = client.post("/slack/events", content=body, headers=sign(SECRET, body))
    assert resp.status_code == 200 and "c-123" in resp.text


def test_a_declared_oversize_body_is_a_413(client: TestClient) -> None:
    body = "x" * (MiB + 1)
    resp = client.post("/slack/events", content=body, headers=sign(SECRET, body))
    assert resp.status_code == 413 and resp.json()["error"] == "body_too_large"


async def test_a_chunked_50_mib_body_is_refused_after_reading_about_the_cap(app: Starlette) -> None:
    pulled = 0

    async def fifty_mib() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(800):
            pulled += 64 * 1024
            yield b"x" * (64 * 1024)

    # Fresh timestamp, made-up signature: the body must be read to check it, and the cap stops
    # the reading long before the end. httpx's ASGI transport pulls the body chunk by chunk.
    headers = {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=00"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
        resp = await http.post("/slack/events", content=fifty_mib(), headers=headers)
    assert resp.status_code == 413
    assert pulled <= MiB + 2 * 64 * 1024  # not 50 MiB
