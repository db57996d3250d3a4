"""Exemptions and snoozes over the API need an ``admin`` credential; an ingest token cannot."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from securitybot.store.db import Database
from securitybot.store.models import AuditLog, Exemption, Snooze, utcnow
from tests.api.conftest import ADMIN_TOKEN, LEAD, auth, serve, team_settings
from tests.api.test_ingest import FLURB


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:
    yield from serve(team_settings(db_url), db)


@pytest.fixture
def snooze_id(db: Database) -> int:
    with db.write() as session:
        s = Snooze(user_id="UBOB", kind="sensitive_command", scope={"host": "h"}, scope_key="k",
                   created_at=utcnow(), expires_at=utcnow() + timedelta(hours=1))  # fmt: skip
        session.add(s)
        session.flush()
        return s.id


def rows(db: Database) -> tuple[int, int]:
    with db.read() as session:
        return (
            session.scalar(select(func.count()).select_from(Exemption)) or 0,
            session.scalar(select(func.count()).select_from(AuditLog)) or 0,
        )


EXEMPT_BOB = {"user": "bob@example.com", "reason": "on leave", "requested_by": LEAD}


def test_an_ingest_token_cannot_read_or_change_exemptions_or_snoozes(
    client: TestClient, db: Database, snooze_id: int
) -> None:
    before = rows(db)
    responses = [
        client.post("/api/v1/exemptions", json=EXEMPT_BOB, headers=auth()),
        client.get("/api/v1/exemptions", headers=auth()),
        client.delete(f"/api/v1/exemptions/1?requested_by={LEAD}", headers=auth()),
        client.get("/api/v1/snoozes", headers=auth()),
        client.delete(f"/api/v1/snoozes/{snooze_id}?requested_by={LEAD}", headers=auth()),
    ]
    for resp in responses:
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"] == "forbidden"
        assert "'admin' scope" in resp.json()["message"]
    assert rows(db) == before
    with db.read() as session:
        assert session.get(Snooze, snooze_id).revoked_at is None  # type: ignore[union-attr]


def test_an_admin_token_manages_exemptions_and_the_audit_names_who_and_which_source(
    client: TestClient, db: Database
) -> None:
    admin = auth(ADMIN_TOKEN)
    created = client.post("/api/v1/exemptions", json=EXEMPT_BOB, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["created_by"] == LEAD
    listed = client.get("/api/v1/exemptions", headers=admin).json()["exemptions"]
    assert [e["user"] for e in listed] == ["bob@example.com"]
    deleted = client.delete(
        f"/api/v1/exemptions/{created.json()['id']}?requested_by={LEAD}", headers=admin
    )
    assert deleted.status_code == 204
    with db.read() as session:
        audit = session.scalars(
            select(AuditLog).where(AuditLog.action.like("exemption.%")).order_by(AuditLog.id)
        ).all()
    assert [(a.action, a.actor, a.details["source"]) for a in audit] == [
        ("exemption.created", LEAD, "secops"),
        ("exemption.deleted", LEAD, "secops"),
    ]


def test_an_admin_token_revokes_snoozes(client: TestClient, db: Database, snooze_id: int) -> None:
    admin = auth(ADMIN_TOKEN)
    assert [s["id"] for s in client.get("/api/v1/snoozes", headers=admin).json()["snoozes"]] == [
        snooze_id
    ]
    resp = client.delete(f"/api/v1/snoozes/{snooze_id}?requested_by={LEAD}", headers=admin)
    assert resp.status_code == 204
    with db.read() as session:
        assert session.get(Snooze, snooze_id).revoked_by == LEAD  # type: ignore[union-attr]


def test_even_an_admin_token_must_name_a_responder_who_is_not_the_subject(
    client: TestClient,
) -> None:
    admin = auth(ADMIN_TOKEN)
    outsider = {**EXEMPT_BOB, "requested_by": "UMALLORY"}
    assert client.post("/api/v1/exemptions", json=outsider, headers=admin).status_code == 403
    self_exempt = {**EXEMPT_BOB, "user": LEAD}
    assert client.post("/api/v1/exemptions", json=self_exempt, headers=admin).status_code == 403


def test_an_admin_only_token_cannot_post_alerts(client: TestClient) -> None:
    resp = client.post("/api/v1/alerts", json=FLURB, headers=auth(ADMIN_TOKEN))
    assert resp.status_code == 403
    assert "'ingest' scope" in resp.json()["message"]
    assert client.post("/api/v1/alerts", json=FLURB, headers=auth()).status_code == 201
