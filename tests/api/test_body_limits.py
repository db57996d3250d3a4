"""Every API endpoint has a body cap that holds with or without Content-Length."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
from sqlalchemy import func, select
from starlette.testclient import TestClient

from securitybot.service import build_service
from securitybot.store.db import Database
from securitybot.store.models import Alert
from tests.api.conftest import api_settings, auth

KiB = 1024


def test_a_body_over_the_cap_is_a_413(client: TestClient, db: Database) -> None:
    body = json.dumps({"kind": "x", "details": {"blob": "x" * 70_000}})
    resp = client.post("/api/v1/alerts", content=body, headers=auth())
    assert resp.status_code == 413 and resp.json()["error"] == "body_too_large"
    assert resp.headers["x-request-id"]
    resp = client.post("/api/v1/alerts/alertmanager", content=body, headers=auth())
    assert resp.status_code == 413


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_cap(
    db: Database, db_url: str
) -> None:
    _runtime, app = build_service(api_settings(db_url), db)
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(800):  # 50 MiB
            pulled += 16 * KiB
            yield b" " * (16 * KiB)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as http:
        resp = await http.post("/api/v1/alerts", content=endless(), headers=auth())
    assert resp.status_code == 413, resp.text
    assert pulled <= 64 * KiB + 2 * 16 * KiB
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Alert)) == 0
