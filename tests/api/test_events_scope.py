"""``POST /api/v1/events`` can sign people out, so it needs its own ``events`` scope, and an events
source speaks only for the orgs it is bound to (``ingest.tokens[].orgs``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from starlette.testclient import TestClient

from securitybot.aer.reference_data import EXAMPLE_TOR_PATH
from securitybot.config import ConfigError, Settings, load_config
from securitybot.store.aer_models import AerAnomaly, AerCounter
from securitybot.store.db import Database
from tests.api.conftest import ADMIN_TOKEN, TOKEN, serve
from tests.api.test_ingest import FLURB

EVENTS_TOKEN = "okta-events-token-0123456789"
ANY_ORG_TOKEN = "grid-events-token-0123456789"
TOR_IP = "198.51.100.7"  # in the example Tor list


def settings(db_url: str) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": db_url},
            "ingest": {
                "tokens": [
                    {"source": "monitoring", "token": TOKEN},
                    {"source": "secops", "token": ADMIN_TOKEN, "scopes": ["admin"]},
                    {"source": "okta", "token": EVENTS_TOKEN, "scopes": ["events"],
                     "orgs": ["T1"]},
                    {"source": "grid", "token": ANY_ORG_TOKEN, "scopes": ["events", "ingest"],
                     "orgs": ["*"]},
                ]
            },
            "aer": {"enabled": True, "tor_list": str(EXAMPLE_TOR_PATH)},
            "scheduler": {"enabled": False},
        }
    )  # fmt: skip


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:
    yield from serve(settings(db_url), db)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tor(org: str, user: str) -> dict[str, Any]:
    return {"org": org, "user": user, "action": "login", "ip": TOR_IP, "session": f"S{user}"}


def stored(db: Database) -> dict[str, int]:
    with db.read() as session:
        resets = session.execute(
            text("SELECT count(*) FROM outbox WHERE effect = 'aer_reset'")
        ).scalar()
        return {
            "anomalies": session.scalar(select(func.count()).select_from(AerAnomaly)) or 0,
            "counters": session.scalar(select(func.count()).select_from(AerCounter)) or 0,
            "resets": int(resets or 0),
        }


FIVE_TOR = [tor("T1", f"U{i}VICTIM") for i in range(5)]


def test_an_ingest_token_cannot_post_events(client: TestClient, db: Database) -> None:
    for token in (TOKEN, ADMIN_TOKEN):
        resp = client.post("/api/v1/events", json=FIVE_TOR, headers=bearer(token))
        assert resp.status_code == 403, resp.text
        body = resp.json()
        assert body["error"] == "forbidden"
        assert "'events' scope" in body["message"] and "no longer" in body["message"]
    # The same as NDJSON, and the events token in the query string (never read there).
    ndjson = "\n".join('{"org":"T1","user":"UX","action":"login"}' for _ in range(3))
    headers = {**bearer(TOKEN), "Content-Type": "application/x-ndjson"}
    resp = client.post("/api/v1/events", content=ndjson.encode(), headers=headers)
    assert resp.status_code == 403
    resp = client.post(f"/api/v1/events?token={EVENTS_TOKEN}", json=FIVE_TOR)
    assert resp.status_code == 401
    assert stored(db) == {"anomalies": 0, "counters": 0, "resets": 0}


def test_an_events_token_posts_events_but_not_alerts(client: TestClient, db: Database) -> None:
    resp = client.post("/api/v1/events", json=FIVE_TOR[:1], headers=bearer(EVENTS_TOKEN))
    assert resp.status_code == 202, resp.text
    assert resp.json()["decisions"] == {"reset": 1}
    resp = client.post("/api/v1/alerts", json=FLURB, headers=bearer(EVENTS_TOKEN))
    assert resp.status_code == 403 and "'ingest' scope" in resp.json()["message"]
    assert client.get("/api/v1/alerts", headers=bearer(EVENTS_TOKEN)).status_code == 403


def test_events_for_orgs_the_source_is_not_bound_to_are_rejected_one_by_one(
    client: TestClient, db: Database
) -> None:
    batch = [
        tor("T1", "UALICE"),
        tor("T2", "UBOB"),  # another org: a forged Tor sign-in to sign Bob out
        {"org": "T1", "user": "UALICE", "action": "file_download", "count": 4},
        tor("t1", "UCAROL"),  # org ids are compared exactly
        {"org": "T2", "user": "UBOB", "action": "file_download", "count": 9},
        tor("T1\u202e", "UDAVE"),
    ]
    resp = client.post("/api/v1/events", json=batch, headers=bearer(EVENTS_TOKEN))
    assert resp.status_code == 202, resp.text
    out = resp.json()
    assert out["accepted"] == 2 and out["decisions"] == {"reset": 1}
    assert [(r["index"], r["field"]) for r in out["rejected"]] == [
        (1, "org"), (3, "org"), (4, "org"), (5, "org"),
    ]  # fmt: skip
    assert out["rejected"][0]["error"] == (
        "org: source 'okta' may not post events for org 'T2' (ingest.tokens[].orgs)"
    )
    with db.read() as session:
        anomalies = session.execute(select(AerAnomaly.org, AerAnomaly.user_id)).all()
        counters = session.execute(select(AerCounter.org, AerCounter.count)).all()
    assert anomalies == [("T1", "UALICE")]
    assert counters == [("T1", 4)]


def test_a_wildcard_events_source_speaks_for_every_org(client: TestClient, db: Database) -> None:
    batch = [tor("T1", "UALICE"), tor("T2", "UBOB"), tor("E0GRID", "UCAROL")]
    resp = client.post("/api/v1/events", json=batch, headers=bearer(ANY_ORG_TOKEN))
    assert resp.status_code == 202, resp.text
    assert resp.json()["rejected"] == [] and resp.json()["decisions"] == {"reset": 3}


def write(tmp: Path, body: str) -> Path:
    p = tmp / "config.yaml"
    p.write_text(body)
    return p


TOKEN_YAML = "ingest:\n  tokens:\n    - source: okta\n      token: 0123456789abcdef\n"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("      scopes: [events]\n",
         "source 'okta' has the 'events' scope but no 'orgs': list the org ids it may post "
         "events for (or ['*'] for every org)"),
        ("      scopes: [events]\n      orgs: []\n", "has the 'events' scope but no 'orgs'"),
        ("      orgs: [T1]\n", "'orgs' binds the 'events' scope, which it lacks"),
        ("      scopes: [events]\n      orgs: ['*', T1]\n", "orgs is either ['*'] or org ids"),
        ("      scopes: [events]\n      orgs: [T1]\n    - source: okta\n"
         "      token: fedcba9876543210\n      scopes: [events]\n      orgs: [T2]\n",
         "source 'okta' is listed twice with different orgs"),
    ],
)  # fmt: skip
def test_an_events_source_without_its_orgs_stops_the_start(
    tmp_path: Path, extra: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, TOKEN_YAML + extra), environ={})
    assert str(exc.value).startswith("config error: ingest.tokens")
    assert expected in str(exc.value)


def test_aer_without_an_events_credential_is_said_at_start(tmp_path: Path) -> None:
    s = load_config(write(tmp_path, TOKEN_YAML + "aer:\n  enabled: true\n"), environ={})
    assert any("no 'events' credential" in note for note in s.unconfigured())
    bound = TOKEN_YAML + "      scopes: [ingest, events]\n      orgs: [T1]\naer:\n  enabled: true\n"
    s = load_config(write(tmp_path, bound), environ={})
    assert not any("'events'" in note for note in s.unconfigured())
    assert s.ingest.event_orgs("okta") == frozenset({"T1"})
