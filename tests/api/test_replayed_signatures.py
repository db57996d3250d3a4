"""A signed ingest request is accepted once: a replay within the window is refused, on any
replica, and old signatures are pruned once they could no longer be accepted anyway."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from securitybot.ingest.replays import ReplayGuard, digest
from securitybot.ingest.signing import signed_headers
from securitybot.service import build_service
from securitybot.store.db import Database
from securitybot.store.models import Alert, SeenSignature, utcnow
from tests.api.conftest import HMAC_SECRET, api_settings

FLURB = {
    "kind": "sensitive_command",
    "user": "alice@example.com",
    "title": "flurb -export on accountingserver01",
}  # no dedup_key: only the signature can tell a replay from a second alert


def signed(
    body: bytes, ts: int | None = None, method: str = "POST", path: str = "/api/v1/alerts",
    query: str = "", nonce: str = "",
) -> dict[str, str]:  # fmt: skip
    headers = signed_headers("siem", HMAC_SECRET, method, path, query, body, timestamp=ts,
                             nonce=nonce)  # fmt: skip
    return {"Content-Type": "application/json", **headers}


def alert_count(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Alert)) or 0)


@pytest.fixture
def replica(db: Database, db_url: str) -> Iterator[TestClient]:
    """A second service process on the same database (its own engine and runtime)."""
    other = Database.from_url(db_url)
    _runtime, app = build_service(api_settings(db_url), other)
    with TestClient(app) as c:
        yield c
    other.engine.dispose()


def test_the_same_signed_request_twice_makes_one_alert(client: TestClient, db: Database) -> None:
    body = json.dumps(FLURB).encode()
    headers = signed(body)
    first = client.post("/api/v1/alerts", content=body, headers=headers)
    again = client.post("/api/v1/alerts", content=body, headers=headers)
    assert first.status_code == 201, first.text
    assert again.status_code == 401
    assert again.json()["error"] == "replayed_signature"
    assert alert_count(db) == 1
    # Signing again (a new timestamp) is a new request: the client's way to retry.
    later = client.post("/api/v1/alerts", content=body, headers=signed(body, int(time.time()) + 1))
    assert later.status_code == 201 and alert_count(db) == 2


def test_a_replay_to_another_replica_is_refused_too(
    client: TestClient, replica: TestClient, db: Database
) -> None:
    body = json.dumps(FLURB).encode()
    headers = signed(body)
    assert client.post("/api/v1/alerts", content=body, headers=headers).status_code == 201
    replayed = replica.post("/api/v1/alerts", content=body, headers=headers)
    assert replayed.status_code == 401 and replayed.json()["error"] == "replayed_signature"
    assert alert_count(db) == 1


def test_bearer_tokens_are_not_one_use(client: TestClient) -> None:
    headers = {"Authorization": "Bearer monitoring-token-0123456789"}
    for _ in range(2):
        assert client.get("/api/v1/alerts", headers=headers).status_code == 200


def test_a_signed_read_is_one_use_and_a_nonce_tells_two_apart(client: TestClient) -> None:
    # A signature is valid for exactly one request, reads included; a client polling twice in
    # one second tells its requests apart with a nonce.
    now = int(time.time())
    headers = signed(b"", now, "GET")
    assert client.get("/api/v1/alerts", headers=headers).status_code == 200
    again = client.get("/api/v1/alerts", headers=headers)
    assert again.status_code == 401 and again.json()["error"] == "replayed_signature"
    for nonce in ("poll-1", "poll-2"):
        resp = client.get("/api/v1/alerts", headers=signed(b"", now, "GET", nonce=nonce))
        assert resp.status_code == 200, resp.text


def test_one_signature_on_two_different_targets_is_not_a_replay() -> None:
    # The key names the target as well as the signature (v1 signatures of two bodiless
    # deletes in one second were the same); the same request sent twice is still one use.
    one = digest("siem", "DELETE /api/v1/exemptions/3?", "v1=same")
    other = digest("siem", "DELETE /api/v1/exemptions/4?", "v1=same")
    assert one != other
    assert one == digest("siem", "DELETE /api/v1/exemptions/3?", "v1=same")


def test_signatures_are_pruned_after_two_windows(db: Database) -> None:
    guard = ReplayGuard(db, window=300)
    target = "POST /api/v1/alerts?"
    assert guard.first_use("siem", target, "v1=old") and guard.first_use(
        "siem", target, "v1=recent"
    )
    with db.write() as session:
        old = session.get(SeenSignature, digest("siem", target, "v1=old"))
        assert old is not None
        # A timestamp may be a window ahead, so a signature lives two windows after first use.
        old.seen_at = utcnow() - timedelta(seconds=601)
    assert guard.prune() == 1
    assert not guard.first_use("siem", target, "v1=recent")
    assert guard.first_use(
        "siem", target, "v1=old"
    )  # gone, and its timestamp is long refused anyway
