"""Dashboard ids past 64 bits are "no such page" (404), never a driver error (500)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from securitybot.service import build_service
from securitybot.store.db import Database
from tests.dashboard.test_dashboard import log_in, page_csrf, seed, settings

HUGE = "99999999999999999999"


@pytest.fixture
def ada(db: Database, db_url: str) -> Iterator[TestClient]:
    seed(db)
    _runtime, app = build_service(settings(db_url), db)
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as c:
        assert log_in(c).status_code == 303
        yield c


def test_an_alert_id_past_64_bits_is_a_404_page(ada: TestClient) -> None:
    assert ada.get(f"/dashboard/alerts/{HUGE}").status_code == 404
    assert ada.get("/dashboard/alerts/9223372036854775808").status_code == 404


def test_revoking_a_snooze_id_past_64_bits_is_a_404(ada: TestClient) -> None:
    csrf = page_csrf(ada)
    resp = ada.post(f"/dashboard/snoozes/{HUGE}/revoke", data={"csrf": csrf})
    assert resp.status_code == 404
