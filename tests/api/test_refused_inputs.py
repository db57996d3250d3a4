"""Inputs the fuzz test found crashing PostgreSQL or int(): each is now a clear 4xx, no write."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from securitybot.store.alerts import encode_cursor
from securitybot.store.db import Database
from tests.api.conftest import auth
from tests.api.test_ingest import FLURB, counts


@pytest.mark.parametrize("field", ["title", "user", "description", "dedup_key", "kind"])
def test_a_nul_character_in_an_alert_is_a_422_naming_the_field(
    client: TestClient, db: Database, field: str
) -> None:
    value = {"user": "al\x00ice@example.com"}.get(field, f"{FLURB.get(field, 'x')}\x00")
    resp = client.post("/api/v1/alerts", json={**FLURB, field: value}, headers=auth())
    assert resp.status_code == 422
    assert resp.json()["message"].startswith(f"{field}: ")
    assert counts(db) == (0, 0, 0)


def test_a_nul_character_in_an_adapter_item_rejects_that_item(
    client: TestClient, db: Database
) -> None:
    labels = {"user": "bob@example.com", "alertname": "a\x00b"}
    alerts = [{"labels": labels, "startsAt": "2024-05-14T09:00:00Z", "fingerprint": "f1"}]
    resp = client.post("/api/v1/alerts/alertmanager", json={"alerts": alerts}, headers=auth())
    assert resp.status_code == 422
    assert resp.json()["detail"] == [
        {"index": 0, "reason": "title: must not contain NUL characters"}
    ]
    assert counts(db) == (0, 0, 0)


@pytest.mark.parametrize("query", ["user=%00", "kind=a%00b", "status=new&user=x%00"])
def test_a_nul_character_in_a_list_filter_is_a_422(client: TestClient, query: str) -> None:
    resp = client.get(f"/api/v1/alerts?{query}", headers=auth())
    assert resp.status_code == 422
    assert "NUL" in resp.json()["message"]


@pytest.mark.parametrize(
    "raw", ["99999999999999999999", "9223372036854775808", "%C2%B2", "1" * 5000]
)
def test_an_alert_id_that_cannot_be_a_row_is_404(client: TestClient, raw: str) -> None:
    assert client.get(f"/api/v1/alerts/{raw}", headers=auth()).status_code == 404


@pytest.mark.parametrize("limit", ["%C2%B2", "9" * 5000, "0", "501"])
def test_an_impossible_limit_is_422(client: TestClient, limit: str) -> None:
    resp = client.get(f"/api/v1/alerts?limit={limit}", headers=auth())
    assert resp.status_code == 422
    assert resp.json()["message"].startswith("limit: ")


def test_a_cursor_past_the_largest_id_is_422(client: TestClient) -> None:
    resp = client.get(f"/api/v1/alerts?cursor={encode_cursor(2**64)}", headers=auth())
    assert resp.status_code == 422
    assert resp.json()["message"].startswith("cursor: ")
