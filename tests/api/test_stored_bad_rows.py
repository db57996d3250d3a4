"""Rows stored by older versions with data we now refuse must still list (issue #12, item 1).

Each backend holds what it really allows in a JSON column: SQLite keeps the text verbatim
(a lone surrogate escape and ``NaN``); PostgreSQL's ``json`` type takes the surrogate escape
but refuses ``NaN``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from securitybot.service import build_service
from securitybot.store.db import Database
from tests.api.conftest import auth
from tests.api.test_hostile_input import hclient  # noqa: F401 (fixture)
from tests.api.test_ingest import FLURB
from tests.dashboard.test_dashboard import log_in, settings

SURROGATE_ROW = '{"k": "a\\udfffb"}'
NAN_ROW = '{"k": "a\\udfffb", "n": NaN}'


def store_hostile_details(db: Database, alert_id: int) -> None:
    with db.write() as s:
        if s.get_bind().dialect.name == "postgresql":
            stmt = "UPDATE alerts SET details = CAST(:d AS json) WHERE id = :id"
            s.execute(sa.text(stmt), {"d": SURROGATE_ROW, "id": alert_id})
        else:
            s.execute(sa.text("UPDATE alerts SET details = :d WHERE id = :id"),
                      {"d": NAN_ROW, "id": alert_id})  # fmt: skip


@pytest.fixture
def stored(hclient: TestClient, db: Database) -> int:  # noqa: F811
    resp = hclient.post("/api/v1/alerts", json=FLURB, headers=auth())
    assert resp.status_code == 201
    alert_id = int(resp.json()["id"])
    store_hostile_details(db, alert_id)
    return alert_id


def test_an_old_row_with_a_lone_surrogate_or_nan_still_lists(
    hclient: TestClient,  # noqa: F811
    stored: int,
) -> None:
    one = hclient.get(f"/api/v1/alerts/{stored}", headers=auth())
    assert one.status_code == 200, one.text
    assert one.json()["details"]["k"] == "a\ufffdb"
    assert one.json()["details"].get("n") is None
    listing = hclient.get("/api/v1/alerts", headers=auth())
    assert listing.status_code == 200, listing.text
    assert [a["id"] for a in listing.json()["alerts"]] == [stored]


@pytest.fixture
def ada(db: Database, db_url: str) -> Iterator[TestClient]:
    _runtime, app = build_service(settings(db_url), db)
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as c:
        assert log_in(c).status_code == 303
        yield c


def test_an_old_row_with_a_lone_surrogate_still_shows_on_the_dashboard(
    stored: int, ada: TestClient
) -> None:
    assert ada.get("/dashboard/alerts").status_code == 200
    page = ada.get(f"/dashboard/alerts/{stored}")
    assert page.status_code == 200, page.text[:300]
