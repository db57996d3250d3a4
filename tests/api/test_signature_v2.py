"""A v2 HMAC signature covers the method, path, canonical query and body: a captured request is
valid for exactly that request (issue #24.1), on every replica, on both stores."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from securitybot.config import Settings
from securitybot.ingest import signing
from securitybot.service import build_service
from securitybot.store.db import Database
from tests.api.conftest import HMAC_SECRET, LEAD, TOKEN, auth
from tests.api.test_replayed_signatures import alert_count

FLURB = {"kind": "sensitive_command", "user": "alice@example.com", "title": "flurb -export"}
ALERTS = "/api/v1/alerts"


def settings(db_url: str) -> Settings:
    # The signing source may do everything, so a signature moved to an admin route would work
    # if the signature did not name the route.
    return Settings.model_validate(
        {
            "database": {"url": db_url},
            "ingest": {
                "tokens": [
                    {"source": "monitoring", "token": TOKEN},
                    {"source": "siem", "hmac_secret": HMAC_SECRET, "scopes": ["ingest", "admin"]},
                ]
            },
            "escalation": {"responders": [LEAD]},
            "scheduler": {"enabled": False},
        }
    )


def app_on(db: Database, db_url: str) -> Iterator[TestClient]:
    _runtime, app = build_service(settings(db_url), db)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def sclient(db: Database, db_url: str) -> Iterator[TestClient]:
    yield from app_on(db, db_url)


@pytest.fixture
def replica(db: Database, db_url: str) -> Iterator[TestClient]:
    """A second service on the same database: its own engine, runtime and replay guard."""
    other = Database.from_url(db_url)
    yield from app_on(other, db_url)
    other.engine.dispose()


def sign(
    method: str, path: str, query: str = "", body: bytes = b"", **kw: object
) -> dict[str, str]:
    return {"Content-Type": "application/json",
            **signing.signed_headers("siem", HMAC_SECRET, method, path, query, body, **kw)}  # type: ignore[arg-type]  # fmt: skip


def url(path: str, query: str) -> str:
    return f"{path}?{query}" if query else path


def test_a_captured_post_cannot_be_resent_with_another_query(
    sclient: TestClient, db: Database
) -> None:
    body = json.dumps(FLURB).encode()
    headers = sign("POST", ALERTS, body=body)
    assert sclient.post(ALERTS, content=body, headers=headers).status_code == 201
    for n in range(1, 6):
        resp = sclient.post(f"{ALERTS}?r={n}", content=body, headers=headers)
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"] == "unauthorized"
    assert alert_count(db) == 1


def test_a_signature_is_refused_for_another_method_path_query_or_body(
    sclient: TestClient, db: Database
) -> None:
    created = sclient.post(ALERTS, json=FLURB, headers=auth()).json()["id"]
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    rule_body = json.dumps(
        {"kind": "sensitive_command", "matchers": {"host": "build-*"}, "reason": "ci",
         "requested_by": LEAD, "expires_at": expires}
    ).encode()  # fmt: skip
    rule = sclient.post("/api/v1/suppressions", content=rule_body,
                        headers=sign("POST", "/api/v1/suppressions", body=rule_body))  # fmt: skip
    assert rule.status_code == 201, rule.text
    rule_id = rule.json()["id"]
    # An empty-body signed GET (a listing poll) must not delete anything.
    poll = sign("GET", ALERTS, "status=new")
    delete_q = f"requested_by={LEAD}"
    moved = [
        ("DELETE", url(f"/api/v1/suppressions/{rule_id}", delete_q), poll),
        ("GET", url(ALERTS, "status=escalated"), poll),  # another query
        ("GET", url(f"{ALERTS}/{created}", ""), poll),  # another path
        ("POST", url(ALERTS, "status=new"), poll),  # another method
    ]
    for method, target, headers in moved:
        resp = sclient.request(method, target, headers=headers, content=b"")
        assert resp.status_code == 401, (method, target, resp.text)
    body = json.dumps(FLURB | {"dedup_key": "one"}).encode()
    headers = sign("POST", ALERTS, body=body)
    other_body = json.dumps(FLURB | {"dedup_key": "two"}).encode()
    assert sclient.post(ALERTS, content=other_body, headers=headers).status_code == 401
    listed = sclient.get("/api/v1/suppressions", headers=sign("GET", "/api/v1/suppressions"))
    assert [r["id"] for r in listed.json()["suppressions"]] == [rule_id], listed.text
    # Each is still good for its own request, exactly once.
    assert sclient.get(f"{ALERTS}?status=new", headers=poll).status_code == 200
    assert sclient.post(ALERTS, content=body, headers=headers).status_code == 201
    assert sclient.post(ALERTS, content=body, headers=headers).status_code == 401


def test_the_query_is_canonical_order_and_encoding(sclient: TestClient) -> None:
    headers = sign("GET", ALERTS, "user=alice%40example.com&limit=5")
    # Another order and another (equivalent) encoding of the same pairs: the same request.
    resp = sclient.get(f"{ALERTS}?limit=5&user=alice@example.com", headers=headers)
    assert resp.status_code == 200, resp.text
    assert signing.canonical_query("status=escalated&limit=5") == "limit=5&status=escalated"
    assert signing.canonical_query("b=2&a=x+y&a=%7e&c") == "a=x%20y&a=~&b=2&c="
    assert signing.canonical_query(b"q=%E2%80%AE/") == "q=%E2%80%AE%2F"


def test_a_replay_is_refused_on_a_second_replica(
    sclient: TestClient, replica: TestClient, db: Database
) -> None:
    body = json.dumps(FLURB).encode()
    headers = sign("POST", ALERTS, body=body)
    assert sclient.post(ALERTS, content=body, headers=headers).status_code == 201
    replayed = replica.post(ALERTS, content=body, headers=headers)
    assert replayed.status_code == 401 and replayed.json()["error"] == "replayed_signature"
    poll = sign("GET", ALERTS, "limit=1")
    assert replica.get(f"{ALERTS}?limit=1", headers=poll).status_code == 200
    replayed = sclient.get(f"{ALERTS}?limit=1", headers=poll)
    assert replayed.status_code == 401 and replayed.json()["error"] == "replayed_signature"
    assert alert_count(db) == 1


def test_a_v1_signature_is_refused_with_a_reason(sclient: TestClient, db: Database) -> None:
    import hashlib
    import hmac

    body = json.dumps(FLURB).encode()
    ts = str(int(time.time()))
    v1 = (
        "v1=" + hmac.new(HMAC_SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    )
    headers = {"X-Securitybot-Source": "siem", "X-Securitybot-Timestamp": ts,
               "X-Securitybot-Signature": v1}  # fmt: skip
    resp = sclient.post(ALERTS, content=body, headers=headers)
    assert resp.status_code == 401 and "v2=" in resp.json()["message"]
    assert alert_count(db) == 0


@pytest.mark.parametrize(
    "header, value",
    [
        ("X-Securitybot-Timestamp", "+1_700_000_000"),
        ("X-Securitybot-Timestamp", "١٧٠٠٠٠٠٠٠٠"),
        ("X-Securitybot-Nonce", "a b"),
        ("X-Securitybot-Nonce", "x" * 129),
        ("X-Securitybot-Signature", "v2=\xff\xfe"),
    ],
)
def test_malformed_signing_headers_are_a_401(sclient: TestClient, header: str, value: str) -> None:
    headers = sign("GET", ALERTS) | {header: value}
    # As raw bytes on the wire (httpx would refuse a non-ASCII str).
    resp = sclient.get(ALERTS, headers={k: v.encode("utf-8") for k, v in headers.items()})
    assert resp.status_code == 401, resp.text
