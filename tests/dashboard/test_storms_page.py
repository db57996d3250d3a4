"""The dashboard lists storms and lets a responder escalate, release or discard one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from securitybot.config import StormConfig
from securitybot.service import build_service
from securitybot.store.db import Database
from tests.dashboard.test_dashboard import audit_actions, log_in, page_csrf, settings
from tests.storms.test_storm_sql import _alerts, _guard, _status


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:
    _runtime, app = build_service(settings(db_url), db)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def test_the_dashboard_escalates_a_storm_with_csrf_and_audit(
    client: TestClient, db: Database
) -> None:
    ids = _alerts(db, [0, 1, 2, 3, 4])
    _guard(db, ids, StormConfig(max_people=2))
    assert client.get("/dashboard/storms").status_code == 303  # signed out: to the login form
    log_in(client)
    page = client.get("/dashboard/storms")
    assert page.status_code == 200 and "UPERSON4" in page.text and "Escalate all" in page.text
    path = "/dashboard/storms/1/escalate"
    assert client.post(path, data={"held": "3", "csrf": "guess"}).status_code == 403
    csrf = page_csrf(client, "/dashboard/storms")
    stale = client.post(path, data={"held": "2", "csrf": csrf})
    assert stale.status_code == 303 and "changed=1" in stale.headers["location"]
    done = client.post(path, data={"held": "3", "csrf": csrf})
    assert done.status_code == 303 and "done=1" in done.headers["location"]
    assert _status(db, ids) == ["new", "new", "escalated", "escalated", "escalated"]
    again = client.post("/dashboard/storms/1/release", data={"held": "3", "csrf": csrf})
    assert again.status_code == 409 and "already escalated" in again.text
    assert ("dashboard:ada", "storm.escalated") in audit_actions(db)
    assert "No storm." in client.get("/dashboard/storms").text
