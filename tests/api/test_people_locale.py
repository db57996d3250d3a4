"""``PUT /api/v1/people/locale`` (issue 33): the security team chooses a person's language over
the API as with ``/securitybot locale``: admin scope, a responder acting, the same store and
audit row (``person.locale_set``), and a language no catalog serves refused with its reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from securitybot.store import slack_people
from securitybot.store.db import Database
from securitybot.store.models import AuditLog
from tests.api.conftest import ADMIN_TOKEN, LEAD, TOKEN, serve, team_settings

URL = "/api/v1/people/locale"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:
    yield from serve(team_settings(db_url), db)


def _chosen(db: Database, user: str) -> str | None:
    with db.read() as session:
        return slack_people.locale(session, user)


def _audited(db: Database) -> list[AuditLog]:
    with db.read() as session:
        rows = session.scalars(
            select(AuditLog).where(AuditLog.action == "person.locale_set").order_by(AuditLog.id)
        )
        return list(rows)


def test_a_responder_chooses_and_clears_a_persons_language(
    db: Database, client: TestClient
) -> None:
    r = client.put(URL, json={"user": "UHANS", "locale": "de-AT", "requested_by": LEAD},
                   headers=ADMIN)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == {"user": "UHANS", "locale": "de", "before": None}
    assert _chosen(db, "UHANS") == "de"
    r = client.put(URL, json={"user": "UHANS", "locale": None, "requested_by": LEAD},
                   headers=ADMIN)  # fmt: skip
    assert r.json() == {"user": "UHANS", "locale": None, "before": "de"}
    assert _chosen(db, "UHANS") is None
    first, second = _audited(db)
    assert (first.actor, first.subject_user) == (LEAD, "UHANS")
    assert first.details == {"locale": "de", "before": None, "via": "api", "source": "secops"}
    assert second.details["locale"] is None and second.details["before"] == "de"


def test_only_the_admin_scope_and_a_responder_may(db: Database, client: TestClient) -> None:
    body = {"user": "UHANS", "locale": "fr", "requested_by": LEAD}
    ingest = client.put(URL, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ingest.status_code == 403, ingest.text
    assert client.put(URL, json=body).status_code == 401
    not_lead = client.put(URL, json={**body, "requested_by": "U0NOTLEAD"}, headers=ADMIN)
    assert not_lead.status_code == 403
    assert "is not a responder" in not_lead.json()["message"]
    assert _chosen(db, "UHANS") is None and _audited(db) == []


def test_a_language_without_a_catalog_is_refused_with_the_reason(
    db: Database, client: TestClient
) -> None:
    r = client.put(URL, json={"user": "UHANS", "locale": "it-IT", "requested_by": LEAD},
                   headers=ADMIN)  # fmt: skip
    assert r.status_code == 422
    assert r.json()["message"].startswith("locale: ")
    assert "no catalog for 'it-IT'" in r.json()["message"]
    assert "de, es, fr, ja, pt_BR" in r.json()["message"]
    # The key is required: a misspelt one never clears a choice.
    r = client.put(URL, json={"user": "UHANS", "lang": "de", "requested_by": LEAD},
                   headers=ADMIN)  # fmt: skip
    assert r.status_code == 422
    r = client.put(URL, json={"user": "not a person", "locale": "de", "requested_by": LEAD},
                   headers=ADMIN)  # fmt: skip
    assert r.status_code == 422 and r.json()["message"].startswith("user: ")
    assert _audited(db) == []


def test_an_email_needs_slack_to_find_the_person(db: Database, client: TestClient) -> None:
    r = client.put(URL, json={"user": "hans@example.com", "locale": "de", "requested_by": LEAD},
                   headers=ADMIN)  # fmt: skip
    assert r.status_code == 404 and r.json()["message"].startswith("user: ")
    assert _audited(db) == []
