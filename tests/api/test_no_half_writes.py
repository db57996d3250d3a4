"""A 500 never leaves a committed row behind (issue #12): failures injected after the insert."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from securitybot.ingest import service as ingest_service
from securitybot.store.db import Database
from tests.api.conftest import auth
from tests.api.test_hostile_input import hclient  # noqa: F401 (fixture)
from tests.api.test_ingest import FLURB, counts

MALLORY = "mallory@example.com"


def fail_for(monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    """Make the outbox enqueue, which runs after the alert INSERT, raise for ``user``'s alert."""
    real_audit_many, real_enqueue = (
        ingest_service.alert_store.audit_many,
        ingest_service.enqueue_many,
    )
    doomed: set[int] = set()

    def audit_many(session: Any, rows: list[dict[str, Any]]) -> None:
        doomed.update(r["alert_id"] for r in rows if r["subject_user"] == user)
        real_audit_many(session, rows)

    def enqueue_many(session: Any, jobs: list[dict[str, Any]]) -> None:
        if any(j["alert_id"] in doomed for j in jobs):
            raise RuntimeError("injected: the outbox write failed")
        real_enqueue(session, jobs)

    monkeypatch.setattr(ingest_service.alert_store, "audit_many", audit_many)
    monkeypatch.setattr(ingest_service, "enqueue_many", enqueue_many)


def test_a_failure_after_the_insert_is_a_500_with_nothing_stored(
    hclient: TestClient,  # noqa: F811
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fail_for(monkeypatch, MALLORY)
    before = counts(db)
    resp = hclient.post("/api/v1/alerts", json={**FLURB, "user": MALLORY}, headers=auth())
    assert resp.status_code == 500
    assert counts(db) == before
    assert hclient.get("/api/v1/alerts", headers=auth()).json()["alerts"] == []


def test_one_failing_item_of_a_webhook_stores_none_of_its_items(
    hclient: TestClient,  # noqa: F811
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both items go to the group committer together; when the group fails it retries per
    # request, and a request is all of one webhook's items: none stored, so a 500 is honest.
    fail_for(monkeypatch, MALLORY)
    items = [
        {"labels": {"user": user, "alertname": "x"}, "startsAt": "2024-05-14T09:00:00Z",
         "fingerprint": f"f-{user}"}
        for user in ("bob@example.com", MALLORY)
    ]  # fmt: skip
    before = counts(db)
    resp = hclient.post("/api/v1/alerts/alertmanager", json={"alerts": items}, headers=auth())
    assert resp.status_code == 500
    assert counts(db) == before
    # The same webhook without the failure goes through whole.
    monkeypatch.undo()
    resp = hclient.post("/api/v1/alerts/alertmanager", json={"alerts": items}, headers=auth())
    assert resp.status_code == 201, resp.text
    assert len(resp.json()["accepted"]) == 2
