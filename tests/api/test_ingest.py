from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import func, select
from starlette.testclient import TestClient

from securitybot.ingest.signing import signed_headers
from securitybot.service import build_service
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, Outbox
from tests.api.conftest import HMAC_SECRET, OTHER_TOKEN, api_settings, auth

FLURB = {
    "kind": "sensitive_command",
    "user": "alice@example.com",
    "title": "flurb -export on accountingserver01",
    "description": "Ran a sensitive command",
    "details": {"host": "accountingserver01", "command": "flurb -export"},
    "dedup_key": "evt-1",
}


def counts(db: Database) -> tuple[int, int, int]:
    with db.read() as s:
        return (
            s.scalar(select(func.count()).select_from(Alert)) or 0,
            s.scalar(select(func.count()).select_from(AuditLog)) or 0,
            s.scalar(select(func.count()).select_from(Outbox)) or 0,
        )


def test_an_alert_is_stored_pending_with_its_audit_row_and_first_job(
    client: TestClient, db: Database
) -> None:
    resp = client.post("/api/v1/alerts", json=FLURB, headers=auth())
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["status"] == "new"
    assert body["kind"] == "sensitive_command"
    assert body["severity"] == "high"
    assert body["source"] == "monitoring"
    assert body["created"] is True
    assert counts(db) == (1, 1, 1)
    with db.read() as s:
        audit = s.scalars(select(AuditLog)).one()
        assert (audit.alert_id, audit.action, audit.to_status) == (
            body["id"],
            "alert.ingested",
            "new",
        )
        alert = s.get(Alert, body["id"])
        assert alert is not None and alert.policy["ack_timeout"] == 600.0  # kind's 10m


def test_the_same_dedup_key_returns_the_existing_alert(client: TestClient, db: Database) -> None:
    first = client.post("/api/v1/alerts", json=FLURB, headers=auth())
    again = client.post("/api/v1/alerts", json={**FLURB, "title": "changed"}, headers=auth())
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["created"] is False
    assert again.json()["title"] == FLURB["title"]
    assert counts(db) == (1, 1, 1)


def test_dedup_keys_are_scoped_per_source(client: TestClient, db: Database) -> None:
    client.post("/api/v1/alerts", json=FLURB, headers=auth())
    other = client.post("/api/v1/alerts", json=FLURB, headers=auth(OTHER_TOKEN))
    assert other.status_code == 201
    assert counts(db)[0] == 2


def test_an_unknown_kind_uses_default_and_keeps_what_was_asked(client: TestClient) -> None:
    resp = client.post(
        "/api/v1/alerts", json={**FLURB, "kind": "brand_new_detection"}, headers=auth()
    )
    assert resp.status_code == 201
    assert resp.json()["kind"] == "default"
    assert resp.json()["details"]["requested_kind"] == "brand_new_detection"


def test_missing_credentials_are_refused(client: TestClient, db: Database) -> None:
    resp = client.post("/api/v1/alerts", json=FLURB)
    assert resp.status_code == 401
    assert "credentials" in resp.json()["message"]
    assert client.post("/api/v1/alerts", json=FLURB, headers=auth("wrong-token")).status_code == 401
    assert counts(db) == (0, 0, 0)


def _bad(client: TestClient, body: Any, **kw: Any) -> dict[str, Any]:
    resp = client.post("/api/v1/alerts", headers=auth(), **({"json": body} | kw))
    assert 400 <= resp.status_code < 500, resp.text
    out: dict[str, Any] = resp.json()
    out["status_code"] = resp.status_code
    return out


def test_invalid_payloads_name_the_field_and_write_nothing(
    client: TestClient, db: Database
) -> None:
    missing_user = _bad(client, {k: v for k, v in FLURB.items() if k != "user"})
    assert missing_user["status_code"] == 422
    assert missing_user["detail"] == [{"field": "user", "reason": "is required"}]
    assert _bad(client, {**FLURB, "user": "x" * 255})["detail"][0]["field"] == "user"
    assert _bad(client, {**FLURB, "title": ""})["detail"][0]["field"] == "title"
    assert _bad(client, {**FLURB, "details": "text"})["detail"][0]["field"] == "details"
    assert _bad(client, {**FLURB, "colour": "red"})["detail"][0] == {
        "field": "colour",
        "reason": "unknown field",
    }
    assert (
        _bad(client, {**FLURB, "occurred_at": "2999-01-01T00:00:00Z"})["detail"][0]["field"]
        == "occurred_at"
    )
    assert _bad(client, [FLURB])["error"] == "malformed_json"
    assert counts(db) == (0, 0, 0)


def test_malformed_json_is_400_and_oversized_bodies_413(client: TestClient, db: Database) -> None:
    resp = client.post("/api/v1/alerts", content=b"{not json", headers=auth())
    assert resp.status_code == 400 and resp.json()["error"] == "malformed_json"
    big = {**FLURB, "details": {"blob": "x" * 70_000}}
    resp = client.post("/api/v1/alerts", content=json.dumps(big).encode(), headers=auth())
    assert resp.status_code == 413 and resp.json()["error"] == "body_too_large"
    assert counts(db) == (0, 0, 0)


def test_a_credential_cannot_post_as_another_source(client: TestClient) -> None:
    resp = client.post("/api/v1/alerts", json={**FLURB, "source": "other"}, headers=auth())
    assert resp.status_code == 403


def _hmac_headers(body: bytes, ts: int, secret: str = HMAC_SECRET) -> dict[str, str]:
    signed = signed_headers("siem", secret, "POST", "/api/v1/alerts", body=body, timestamp=ts)
    return {"Content-Type": "application/json", **signed}


def test_hmac_signed_alerts_are_accepted(client: TestClient) -> None:
    body = json.dumps(FLURB).encode()
    resp = client.post(
        "/api/v1/alerts", content=body, headers=_hmac_headers(body, int(time.time()))
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["source"] == "siem"


def test_hmac_rejects_tampering_wrong_secret_and_replays(client: TestClient, db: Database) -> None:
    body = json.dumps(FLURB).encode()
    now = int(time.time())
    tampered = client.post(
        "/api/v1/alerts", content=body.replace(b"alice", b"mallo"), headers=_hmac_headers(body, now)
    )
    wrong = client.post(
        "/api/v1/alerts", content=body, headers=_hmac_headers(body, now, "another-secret-0123456")
    )
    stale = client.post("/api/v1/alerts", content=body, headers=_hmac_headers(body, now - 301))
    assert [r.status_code for r in (tampered, wrong, stale)] == [401, 401, 401]
    assert "replay window" in stale.json()["message"]
    assert counts(db) == (0, 0, 0)


def test_get_returns_status_and_outcome(client: TestClient) -> None:
    created = client.post("/api/v1/alerts", json=FLURB, headers=auth()).json()
    got = client.get(f"/api/v1/alerts/{created['id']}", headers=auth())
    assert got.status_code == 200
    assert got.json()["status"] == "new" and got.json()["outcome"] is None
    assert client.get("/api/v1/alerts/999999", headers=auth()).status_code == 404
    assert client.get(f"/api/v1/alerts/{created['id']}").status_code == 401


def test_list_filters_and_paginates(client: TestClient) -> None:
    for i in range(5):
        client.post("/api/v1/alerts", json={**FLURB, "dedup_key": f"k{i}"}, headers=auth())
    client.post(
        "/api/v1/alerts",
        json={**FLURB, "dedup_key": "b", "user": "bob@example.com", "kind": "mass_download"},
        headers=auth(),
    )
    page1 = client.get("/api/v1/alerts?limit=2&user=alice@example.com", headers=auth()).json()
    assert len(page1["alerts"]) == 2 and page1["next_cursor"]
    seen = [a["id"] for a in page1["alerts"]]
    cursor = page1["next_cursor"]
    while cursor:
        page = client.get(
            f"/api/v1/alerts?limit=2&user=alice@example.com&cursor={cursor}", headers=auth()
        ).json()
        seen += [a["id"] for a in page["alerts"]]
        cursor = page["next_cursor"]
    assert len(seen) == 5 == len(set(seen)) and seen == sorted(seen, reverse=True)
    kinds = client.get("/api/v1/alerts?kind=mass_download", headers=auth()).json()["alerts"]
    assert [a["user"] for a in kinds] == ["bob@example.com"]
    assert len(client.get("/api/v1/alerts?status=new", headers=auth()).json()["alerts"]) == 6
    assert client.get("/api/v1/alerts?status=resolved", headers=auth()).json()["alerts"] == []
    assert (
        client.get("/api/v1/alerts?since=2999-01-01T00:00:00Z", headers=auth()).json()["alerts"]
        == []
    )
    assert client.get("/api/v1/alerts?status=bogus", headers=auth()).status_code == 422
    assert client.get("/api/v1/alerts?cursor=zzz", headers=auth()).status_code == 422


def test_healthz_reports_the_database(client: TestClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.json()["database"] == "ok"


def test_readyz_checks_the_database_and_nothing_else_without_a_stream(
    client: TestClient,
) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ready", "database": "ok"}


def test_an_ingested_alert_wakes_only_who_starts_conversations(db: Database, db_url: str) -> None:
    """The wake-up names the one effect ingest writes; a duplicate wrote nothing, so it wakes
    nobody (before, every POST woke every claimer: 1.4 empty claims per alert at 100/s)."""
    runtime, app = build_service(api_settings(db_url), db)
    woken: list[frozenset[str] | None] = []
    runtime.on_new_work(woken.append)
    with TestClient(app) as client:
        assert client.post("/api/v1/alerts", json=FLURB, headers=auth()).status_code == 201
        assert client.post("/api/v1/alerts", json=FLURB, headers=auth()).status_code == 200
    assert woken == [frozenset({"start_conversation"})]
