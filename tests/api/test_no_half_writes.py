"""A 500 never leaves a committed row behind (issue #12): failures injected after the insert."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.testclient import TestClient

from securitybot.ingest import service as ingest_service
from securitybot.ingest.schema import AlertIn
from securitybot.service import build_service
from securitybot.store.db import Database
from tests.api.conftest import api_settings, auth
from tests.api.test_hostile_input import hclient  # noqa: F401 (fixture)
from tests.api.test_ingest import FLURB, counts

MALLORY = "mallory@example.com"


def fail_for(monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    """Make the audit write, which runs after the alert INSERT, raise for ``user``'s alert."""
    real_audit_many = ingest_service.alert_store.audit_many

    def audit_many(session: Any, rows: list[dict[str, Any]]) -> None:
        real_audit_many(session, rows)
        if any(r["subject_user"] == user for r in rows):
            raise RuntimeError("injected: failed after the insert")

    monkeypatch.setattr(ingest_service.alert_store, "audit_many", audit_many)


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


def test_a_failing_request_in_a_group_commit_fails_alone(
    db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three requests queued together share one transaction; when it fails, each is retried
    # on its own: the good ones are stored and answered, the bad one gets its error.
    fail_for(monkeypatch, MALLORY)
    runtime, _app = build_service(api_settings(db_url), db)
    users = ["bob@example.com", MALLORY, "carol@example.com"]
    payloads = [AlertIn.model_validate({**FLURB, "user": u, "dedup_key": u}) for u in users]

    async def submit_all() -> list[Any]:
        try:
            jobs = (runtime.ingest.submit(p, "monitoring") for p in payloads)
            return await asyncio.gather(*jobs, return_exceptions=True)
        finally:
            await runtime.ingest.close()

    before = counts(db)
    bob, mallory, carol = asyncio.run(submit_all())
    assert isinstance(mallory, RuntimeError)
    assert bob.created and carol.created
    assert counts(db) == (before[0] + 2, before[1] + 2, before[2] + 2)
