"""No alert is refused for want of a user: it is stored and goes to the security team.

Alertmanager treats a 4xx as "unrecoverable" and never retries, so refusing an alert whose
labels name nobody (or name ``root``) would lose it for good.
"""

from __future__ import annotations

from sqlalchemy import select
from starlette.testclient import TestClient

from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, Outbox
from tests.adapters.conftest import auth, counts, sample

FLURB = {"kind": "sensitive_command", "title": "flurb -export on accountingserver01"}


def test_an_alertmanager_alert_without_a_user_label_is_accepted_with_a_note(
    client: TestClient, db: Database
) -> None:
    payload = sample("alertmanager")
    no_label = {**payload, "alerts": [payload["alerts"][2]]}  # DiskAlmostFull: labels name nobody

    resp = client.post("/api/v1/alerts/alertmanager", json=no_label, headers=auth())

    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["rejected"] == []
    [alert] = body["accepted"]
    assert alert["user"] == "" and alert["status"] == "new"
    assert alert["note"] == "names no Slack user (the user is empty); it goes to the security team"
    with db.read() as s:
        [job] = s.scalars(select(Outbox)).all()
        assert job.effect == "start_conversation"  # escalated by the conversation, not here


def test_a_login_name_is_kept_as_given_and_noted(client: TestClient, db: Database) -> None:
    resp = client.post("/api/v1/alerts/elastalert", json=sample("elastalert"), headers=auth())

    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["rejected"] == []
    svc = next(a for a in body["accepted"] if a["index"] == 1)
    assert svc["user"] == "svc-backup"
    assert svc["note"] == "names no Slack user (got 'svc-backup'); it goes to the security team"
    person = next(a for a in body["accepted"] if a["index"] == 0)
    assert "note" not in person  # a real person is DM'd as before
    assert counts(db)[0] == 2


def test_the_generic_api_accepts_a_present_non_person_user_with_a_note(
    client: TestClient, db: Database
) -> None:
    resp = client.post("/api/v1/alerts", json={**FLURB, "user": "root"}, headers=auth())

    assert resp.status_code == 201, resp.text
    assert resp.json()["user"] == "root"
    assert resp.json()["note"] == "names no Slack user (got 'root'); it goes to the security team"
    person = client.post("/api/v1/alerts", json={**FLURB, "user": "Alice@Example.com"},
                         headers=auth())  # fmt: skip
    assert person.json()["user"] == "alice@example.com" and "note" not in person.json()
    with db.read() as s:
        assert sorted(a.user_given for a in s.scalars(select(Alert))) == [
            "alice@example.com", "root"
        ]  # fmt: skip


def test_the_generic_api_still_requires_the_field_and_refuses_malformed_values(
    client: TestClient, db: Database
) -> None:
    missing = client.post("/api/v1/alerts", json=FLURB, headers=auth())
    assert missing.status_code == 422
    assert missing.json()["detail"] == [{"field": "user", "reason": "is required"}]
    for bad in ("ro\x00ot", "x" * 255, 42):
        resp = client.post("/api/v1/alerts", json={**FLURB, "user": bad}, headers=auth())
        assert resp.status_code == 422, (bad, resp.text)
        assert resp.json()["detail"][0]["field"] == "user"
    assert counts(db) == (0, 0, 0)


def test_a_long_free_text_user_is_stored_but_not_made_an_audit_subject(
    client: TestClient, db: Database
) -> None:
    odd = "CN=backup service,OU=Service Accounts,DC=corp,DC=example,DC=com (" + "x" * 150 + ")"
    resp = client.post("/api/v1/alerts", json={**FLURB, "user": odd}, headers=auth())

    assert resp.status_code == 201, resp.text
    with db.read() as s:
        assert s.scalars(select(Alert)).one().user_given == odd
        assert s.scalars(select(AuditLog)).one().subject_user is None
