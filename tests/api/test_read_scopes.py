"""Who reads what: the audit log needs ``admin``; an ``ingest`` credential reads only the
alerts of its own source (issue #24.6)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from securitybot.config import Settings
from securitybot.store.db import Database
from tests.api.conftest import ADMIN_TOKEN, OTHER_TOKEN, TOKEN, auth, serve

FLURB = {"kind": "sensitive_command", "user": "alice@example.com", "title": "flurb -export"}


@pytest.fixture
def sclient(db: Database, db_url: str) -> Iterator[TestClient]:
    settings = Settings.model_validate(
        {
            "database": {"url": db_url},
            "ingest": {
                "tokens": [
                    {"source": "monitoring", "token": TOKEN},
                    {"source": "other", "token": OTHER_TOKEN},
                    {"source": "secops", "token": ADMIN_TOKEN, "scopes": ["ingest", "admin"]},
                ]
            },
            "scheduler": {"enabled": False},
        }
    )
    yield from serve(settings, db)


def post(client: TestClient, token: str, dedup: str) -> int:
    resp = client.post("/api/v1/alerts", json=FLURB | {"dedup_key": dedup}, headers=auth(token))
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def test_an_ingest_token_cannot_read_the_audit_log(sclient: TestClient) -> None:
    post(sclient, TOKEN, "a")
    resp = sclient.get("/api/v1/audit", headers=auth(TOKEN))
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"] == "forbidden" and "'admin'" in resp.json()["message"]
    admin = sclient.get("/api/v1/audit", headers=auth(ADMIN_TOKEN))
    assert admin.status_code == 200 and admin.json()["audit"], admin.text


def test_an_ingest_token_cannot_read_the_anomalies(sclient: TestClient) -> None:
    # Who was flagged, from which address, and the decision: guarded like the audit log.
    resp = sclient.get("/api/v1/anomalies", headers=auth(TOKEN))
    assert resp.status_code == 403 and resp.json()["error"] == "forbidden", resp.text
    assert sclient.get("/api/v1/anomalies", headers=auth(ADMIN_TOKEN)).status_code == 200


def test_an_ingest_token_lists_only_its_own_sources_alerts(sclient: TestClient) -> None:
    mine = post(sclient, TOKEN, "mine")
    theirs = post(sclient, OTHER_TOKEN, "theirs")
    listed = sclient.get("/api/v1/alerts", headers=auth(TOKEN)).json()["alerts"]
    assert [a["id"] for a in listed] == [mine]
    listed = sclient.get("/api/v1/alerts", headers=auth(OTHER_TOKEN)).json()["alerts"]
    assert [a["id"] for a in listed] == [theirs]
    everything = sclient.get("/api/v1/alerts", headers=auth(ADMIN_TOKEN)).json()["alerts"]
    assert {a["id"] for a in everything} == {mine, theirs}


def test_an_ingest_token_cannot_fetch_another_sources_alert(sclient: TestClient) -> None:
    mine = post(sclient, TOKEN, "mine")
    theirs = post(sclient, OTHER_TOKEN, "theirs")
    assert sclient.get(f"/api/v1/alerts/{mine}", headers=auth(TOKEN)).status_code == 200
    other = sclient.get(f"/api/v1/alerts/{theirs}", headers=auth(TOKEN))
    # The same 404 as an id that does not exist: no telling which ids other sources hold.
    assert other.status_code == 404 and other.json()["error"] == "not_found"
    assert sclient.get(f"/api/v1/alerts/{theirs}", headers=auth(ADMIN_TOKEN)).status_code == 200
