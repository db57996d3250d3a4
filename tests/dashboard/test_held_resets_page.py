"""The dashboard lists resets held past the reset budget and releases or discards them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from securitybot.aer.events import parse_event
from securitybot.aer.reference_data import EXAMPLE_TOR_PATH
from securitybot.aer.service import AerService
from securitybot.config import AerConfig
from securitybot.service import build_service
from securitybot.store.db import Database
from tests.dashboard.test_dashboard import audit_actions, log_in, page_csrf, settings

TOR_IP = "198.51.100.7"


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:
    _runtime, app = build_service(settings(db_url), db)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def hold(db: Database, users: list[str]) -> None:
    cfg = AerConfig.model_validate({"enabled": True, "tor_list": str(EXAMPLE_TOR_PATH),
                                    "reset_budget": {"count": 1}})  # fmt: skip
    now = datetime.now(UTC)
    AerService(cfg, db).ingest([
        parse_event({"org": "T1", "user": u, "action": "login", "ip": TOR_IP}, now) for u in users
    ])  # fmt: skip


def reset_jobs(db: Database) -> int:
    with db.read() as s:
        return int(
            s.execute(text("SELECT count(*) FROM outbox WHERE effect = 'aer_reset'")).scalar() or 0
        )


def test_the_dashboard_releases_held_resets_with_csrf_and_audit(
    client: TestClient, db: Database
) -> None:
    hold(db, ["UONE", "UTWO", "UTHREE"])
    assert client.get("/dashboard/held").status_code == 303  # signed out: to the login form
    assert client.post("/dashboard/held/1/release", data={"resets": "2"}).status_code == 401
    log_in(client)
    page = client.get("/dashboard/held")
    assert page.status_code == 200 and "UTWO" in page.text and "Release 2" in page.text
    path = "/dashboard/held/1/release"
    assert client.post(path, data={"resets": "2", "csrf": "guess"}).status_code == 403
    csrf = page_csrf(client, "/dashboard/held")
    stale = client.post(path, data={"resets": "1", "csrf": csrf})
    assert stale.status_code == 303 and "changed=1" in stale.headers["location"]
    assert reset_jobs(db) == 1  # only the one the budget allowed
    done = client.post(path, data={"resets": "2", "csrf": csrf})
    assert done.status_code == 303 and "done=1" in done.headers["location"]
    assert reset_jobs(db) == 3
    again = client.post("/dashboard/held/1/discard", data={"resets": "2", "csrf": csrf})
    assert again.status_code == 409 and "already released" in again.text
    assert ("dashboard:ada", "aer.held_resets_released") in audit_actions(db)
    assert "Nothing held." in client.get("/dashboard/held").text
