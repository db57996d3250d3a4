"""``/api/v1/suppressions``: admin-scoped, audited as a responder, capped, never deleted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from securitybot.store.db import Database
from securitybot.store.models import AuditLog
from securitybot.store.suppression_models import SuppressionRule
from tests.api.conftest import ADMIN_TOKEN, LEAD, auth, serve, team_settings


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:
    yield from serve(team_settings(db_url, max_suppression="1d"), db)


def in_hours(h: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=h)).isoformat()


def rule_body(**overrides: object) -> dict[str, object]:
    return {"kind": "sensitive_command", "matchers": {"host": "build-*", "source": "ci"},
            "reason": "CI image rebuild", "requested_by": LEAD, "expires_at": in_hours(4),
            **overrides}  # fmt: skip


def count(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(SuppressionRule)) or 0


def test_a_responder_makes_lists_and_revokes_a_rule_with_an_admin_token(
    client: TestClient, db: Database
) -> None:
    resp = client.post("/api/v1/suppressions", json=rule_body(), headers=auth(ADMIN_TOKEN))
    assert resp.status_code == 201, resp.text
    rule = resp.json()
    assert rule["matchers"] == {"host": "build-*", "source": "ci"} and rule["active"] is True
    assert rule["created_by"] == LEAD
    listed = client.get("/api/v1/suppressions", headers=auth(ADMIN_TOKEN)).json()
    assert [r["id"] for r in listed["suppressions"]] == [rule["id"]]
    gone = client.delete(f"/api/v1/suppressions/{rule['id']}?requested_by={LEAD}",
                         headers=auth(ADMIN_TOKEN))  # fmt: skip
    assert gone.status_code == 204
    assert client.get("/api/v1/suppressions", headers=auth(ADMIN_TOKEN)).json() == {
        "suppressions": []
    }
    everything = client.get("/api/v1/suppressions?all=true", headers=auth(ADMIN_TOKEN)).json()
    [kept] = everything["suppressions"]
    assert (kept["revoked_by"], kept["active"]) == (LEAD, False)
    with db.read() as session:
        actions = session.scalars(
            select(AuditLog.action)
            .where(AuditLog.action.like("suppression.%"))
            .order_by(AuditLog.id)
        ).all()
        via = session.scalars(
            select(AuditLog.details).where(AuditLog.action == "suppression.created")
        ).one()
    assert actions == ["suppression.created", "suppression.revoked"]
    assert via["via"] == "api" and via["source"] == "secops"


@pytest.mark.parametrize(
    ("overrides", "status", "field"),
    [
        ({"kind": "ssh_key_added"}, 422, "kind"),  # always_escalate
        ({"kind": "no_such_kind"}, 422, "kind"),
        ({"expires_at": in_hours(48)}, 422, "expires_at"),  # over max_suppression
        ({"expires_at": in_hours(-1)}, 422, "expires_at"),
        ({"expires_at": None}, 422, "expires_at"),  # an expiry is required
        ({"matchers": {"host name": "x"}}, 422, "matchers"),
        ({"requested_by": "U0NOTSEC"}, 403, None),
    ],
)
def test_bad_rules_are_refused_with_a_reason_and_nothing_is_written(
    client: TestClient, db: Database, overrides: dict[str, object], status: int, field: str | None
) -> None:
    resp = client.post("/api/v1/suppressions", json=rule_body(**overrides),
                       headers=auth(ADMIN_TOKEN))  # fmt: skip
    assert resp.status_code == status, resp.text
    if field:
        assert resp.json()["message"].startswith(field)
    assert count(db) == 0


def test_an_ingest_token_can_neither_read_nor_make_rules(client: TestClient, db: Database) -> None:
    assert client.post("/api/v1/suppressions", json=rule_body(), headers=auth()).status_code == 403
    assert client.get("/api/v1/suppressions", headers=auth()).status_code == 403
    assert count(db) == 0
