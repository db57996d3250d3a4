"""``/api/v1/aer/held``: responders release or discard resets held past the reset budget over
the API too (``admin`` scope, ``requested_by`` a responder), each once, audited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from starlette.testclient import TestClient

from securitybot.aer.events import parse_event
from securitybot.aer.reference_data import EXAMPLE_TOR_PATH
from securitybot.aer.service import AerService
from securitybot.config import Settings
from securitybot.store.db import Database
from securitybot.store.models import AuditLog
from tests.api.conftest import ADMIN_TOKEN, LEAD, TOKEN, serve

TOR_IP = "198.51.100.7"


def settings(db_url: str) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": db_url},
            "ingest": {"tokens": [
                {"source": "monitoring", "token": TOKEN},
                {"source": "secops", "token": ADMIN_TOKEN, "scopes": ["admin"]},
            ]},
            "escalation": {"responders": [LEAD, "UVICTIM2"]},
            "aer": {"enabled": True, "tor_list": str(EXAMPLE_TOR_PATH),
                    "reset_budget": {"count": 1, "per": "1h"}},
            "scheduler": {"enabled": False},
        }
    )  # fmt: skip


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:
    yield from serve(settings(db_url), db)


def hold(db: Database, db_url: str, org: str, users: list[str]) -> None:
    """Tor sign-ins for ``users``: with a budget of 1 per hour, all but the first are held."""
    now = datetime.now(UTC)
    events = [parse_event({"org": org, "user": u, "action": "login", "ip": TOR_IP,
                           "session": f"S{u}"}, now) for u in users]  # fmt: skip
    AerService(settings(db_url).aer, db).ingest(events)


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def reset_keys(db: Database) -> list[str]:
    with db.read() as session:
        q = text("SELECT idempotency_key FROM outbox WHERE effect = 'aer_reset' ORDER BY id")
        return [k for (k,) in session.execute(q)]


def audits(db: Database, action: str) -> list[AuditLog]:
    with db.read() as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.action == action)))


def test_responders_list_and_release_held_resets_once(
    client: TestClient, db: Database, db_url: str
) -> None:
    hold(db, db_url, "T1", ["UVICTIM1", "UVICTIM3", "UVICTIM4"])
    assert client.get("/api/v1/aer/held", headers={"Authorization": f"Bearer {TOKEN}"}
                      ).status_code == 403  # fmt: skip
    (batch,) = client.get("/api/v1/aer/held", headers=admin()).json()["held"]
    assert (batch["org"], batch["status"], batch["resets"]) == ("T1", "open", 2)
    assert batch["users"] == ["UVICTIM3", "UVICTIM4"]
    assert batch["budget"] == {"count": 1, "per_seconds": 3600.0}
    before = reset_keys(db)
    path = f"/api/v1/aer/held/{batch['id']}/release"

    for body, status in [
        ({}, 422),                                          # who asks?
        ({"requested_by": "UMALLORY"}, 403),                # not a responder
        ({"requested_by": LEAD, "resets": 1}, 409),         # looked at an older count
        ({"requested_by": LEAD, "extra": 1}, 422),
    ]:  # fmt: skip
        resp = client.post(path, json=body, headers=admin())
        assert resp.status_code == status, (body, resp.text)
    assert reset_keys(db) == before

    resp = client.post(path, json={"requested_by": LEAD, "resets": 2}, headers=admin())
    assert resp.status_code == 200, resp.text
    assert (resp.json()["status"], resp.json()["resolved_by"]) == ("released", LEAD)
    again = client.post(path, json={"requested_by": LEAD}, headers=admin())
    assert again.status_code == 409 and "already released" in again.json()["message"]
    discard = client.post(path.replace("release", "discard"), json={"requested_by": LEAD},
                          headers=admin())  # fmt: skip
    assert discard.status_code == 409
    added = reset_keys(db)[len(before) :]
    assert len(added) == 2 and len(set(added)) == 2  # one reset job per held user
    (released,) = audits(db, "aer.held_resets_released")
    assert released.actor == LEAD and released.org == "T1"
    assert released.details["users"] == ["UVICTIM3", "UVICTIM4"]
    assert (released.details["via"], released.details["source"]) == ("api", "secops")
    assert client.get("/api/v1/aer/held", headers=admin()).json()["held"] == []
    listed = client.get("/api/v1/aer/held?all=1", headers=admin()).json()["held"]
    assert [b["status"] for b in listed] == ["released"]


def test_discard_resets_nobody_and_nobody_decides_on_their_own_reset(
    client: TestClient, db: Database, db_url: str
) -> None:
    hold(db, db_url, "T1", ["UVICTIM1", "UVICTIM2", "UVICTIM3"])
    (batch,) = client.get("/api/v1/aer/held", headers=admin()).json()["held"]
    before = reset_keys(db)
    path = f"/api/v1/aer/held/{batch['id']}/discard"
    mine = client.post(path, json={"requested_by": "UVICTIM2"}, headers=admin())
    assert mine.status_code == 403 and "your own account" in mine.json()["message"]
    assert [a.details["reason"] for a in audits(db, "triage.refused")] == ["self"]
    assert client.post("/api/v1/aer/held/999/discard", json={"requested_by": LEAD},
                       headers=admin()).status_code == 404  # fmt: skip
    assert client.post("/api/v1/aer/held/x%C3%A9/discard", json={"requested_by": LEAD},
                       headers=admin()).status_code == 404  # fmt: skip
    resp = client.post(path, json={"requested_by": LEAD}, headers=admin())
    assert resp.status_code == 200 and resp.json()["status"] == "discarded"
    assert reset_keys(db) == before
    (discarded,) = audits(db, "aer.held_resets_discarded")
    assert discarded.details["users"] == ["UVICTIM2", "UVICTIM3"]
