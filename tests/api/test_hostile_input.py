"""Hostile JSON on every ingest entry point: a 4xx naming the problem, and nothing written.

Each vector here gave a 500 on the base commit (issue #12, item 1), some after committing the
row: lone surrogates, NaN/Infinity, nesting deep enough for a RecursionError, 5,000-digit
integers, and times that overflow when converted to UTC.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from securitybot.config import Settings
from securitybot.service import build_service
from securitybot.store.db import Database
from tests.api.conftest import TOKEN, auth
from tests.api.test_ingest import counts

FLURB_JSON = (
    '{"kind":"sensitive_command","user":"alice@example.com","title":"flurb",'
    '"dedup_key":"evt-1","details":%s}'
)
ALERTMANAGER_JSON = (
    '{"alerts":[{"labels":{"user":"bob@example.com","alertname":"x"},'
    '"startsAt":"2024-05-14T09:00:00Z","fingerprint":"f1","annotations":{"x":%s}}]}'
)
EVENT_JSON = '{"org":"T1","user":"UBOB","action":"file_download"%s}'
LOW, HIGH = "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"

# Raw JSON text, because a JSON encoder would refuse to produce most of these.
HOSTILE_DETAILS = {
    "lone surrogate": '{"k":"a\\udfffb"}',
    "lone surrogate in a key": '{"a\\ud800":1}',
    "NaN": '{"k":NaN}',
    "Infinity": '{"k":-Infinity}',
    "deep nesting": "[" * 20_000 + "]" * 20_000,
    "5,000-digit integer": '{"k":' + "9" * 5000 + "}",
}


@pytest.fixture
def hclient(db: Database, db_url: str) -> Iterator[TestClient]:
    cfg = Settings.model_validate(
        {
            "database": {"url": db_url},
            "ingest": {
                "tokens": [
                    {
                        "source": "monitoring",
                        "token": TOKEN,
                        "scopes": ["ingest", "events", "admin"],
                        "orgs": ["T1"],
                    }
                ]
            },
            "aer": {"enabled": True},
            "scheduler": {"enabled": False},
        }
    )
    _runtime, app = build_service(cfg, db)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def post_raw(client: TestClient, path: str, body: str) -> tuple[int, dict[str, object]]:
    headers = {**auth(), "Content-Type": "application/json"}
    resp = client.post(path, content=body.encode("utf-8"), headers=headers)
    return resp.status_code, resp.json()


@pytest.mark.parametrize("details", HOSTILE_DETAILS.values(), ids=HOSTILE_DETAILS.keys())
def test_hostile_json_in_an_alert_is_a_4xx_and_writes_nothing(
    hclient: TestClient, db: Database, details: str
) -> None:
    before = counts(db)  # AER on: start-up may have audited its config
    status, body = post_raw(hclient, "/api/v1/alerts", FLURB_JSON % details)
    assert 400 <= status < 500, body
    assert body["message"]
    assert counts(db) == before
    assert hclient.get("/api/v1/alerts", headers=auth()).status_code == 200


@pytest.mark.parametrize("details", HOSTILE_DETAILS.values(), ids=HOSTILE_DETAILS.keys())
def test_hostile_json_in_an_adapter_webhook_is_a_4xx_and_writes_nothing(
    hclient: TestClient, db: Database, details: str
) -> None:
    body = ALERTMANAGER_JSON % details
    before = counts(db)
    status, out = post_raw(hclient, "/api/v1/alerts/alertmanager", body)
    assert 400 <= status < 500, out
    assert counts(db) == before


@pytest.mark.parametrize("when", [LOW, HIGH])
def test_an_edge_time_in_occurred_at_is_a_422(hclient: TestClient, db: Database, when: str) -> None:
    before = counts(db)
    body = FLURB_JSON.replace('"details":%s', f'"occurred_at":"{when}","details":{{}}')
    status, out = post_raw(hclient, "/api/v1/alerts", body)
    assert status == 422, out
    assert str(out["message"]).startswith("occurred_at: ")
    assert counts(db) == before


@pytest.mark.parametrize("when", [LOW, HIGH])
def test_an_edge_time_in_since_is_a_422(hclient: TestClient, when: str) -> None:
    for path in ("/api/v1/alerts", "/api/v1/audit", "/api/v1/anomalies"):
        resp = hclient.get(path, params={"since": when}, headers=auth())
        assert resp.status_code == 422, (path, resp.text)
        assert resp.json()["message"].startswith("since: ")


EVENT_VECTORS = {
    1: f',"ts":"{LOW}"',
    2: f',"ts":"{HIGH}"',
    3: ',"ts":-99999999999',
    4: ',"count":' + "9" * 5000,
    5: ',"asn":1e999',
    6: ',"details":{"k":NaN}',
    7: ',"session":"a\\udfffb"',
    8: ',"details":{"a\\ud800":1}',
}


@pytest.mark.parametrize("ndjson", [False, True], ids=["json", "ndjson"])
def test_each_hostile_event_is_rejected_on_its_own(hclient: TestClient, ndjson: bool) -> None:
    events = [EVENT_JSON % ""] + [EVENT_JSON % v for v in EVENT_VECTORS.values()]
    events.append(EVENT_JSON % "")
    body = "\n".join(events) if ndjson else "[" + ",".join(events) + "]"
    ctype = "application/x-ndjson" if ndjson else "application/json"
    resp = hclient.post(
        "/api/v1/events", content=body.encode(), headers={**auth(), "Content-Type": ctype}
    )
    assert resp.status_code == 202, resp.text
    out = resp.json()
    assert out["accepted"] == 2
    assert [r["index"] for r in out["rejected"]] == list(EVENT_VECTORS)
    assert all(r["error"].startswith(r["field"] + ": ") for r in out["rejected"])


def test_events_nested_too_deep_are_a_400_not_a_crash(hclient: TestClient) -> None:
    body = "[" * 20_000 + "]" * 20_000
    resp = hclient.post("/api/v1/events", content=body.encode(), headers=auth())
    assert resp.status_code == 400, resp.text
    assert "deeper" in resp.json()["message"]


@pytest.mark.parametrize("when", [LOW, HIGH])
def test_an_edge_time_in_an_exemption_expiry_is_a_422(db: Database, db_url: str, when: str) -> None:
    cfg = Settings.model_validate(
        {
            "database": {"url": db_url},
            "ingest": {"tokens": [{"source": "m", "token": TOKEN, "scopes": ["admin"]}]},
            "escalation": {"responders": ["UADMIN1"]},
            "scheduler": {"enabled": False},
        }
    )
    _runtime, app = build_service(cfg, db)
    body = {"user": "bob@example.com", "reason": "r", "requested_by": "UADMIN1", "expires_at": when}
    with TestClient(app, raise_server_exceptions=False) as client:
        before = counts(db)
        resp = client.post("/api/v1/exemptions", json=body, headers=auth())
        assert resp.status_code == 422, resp.text
        assert resp.json()["message"].startswith("expires_at: ")
        assert counts(db) == before
