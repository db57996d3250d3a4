"""Alerts that name nobody (``no_user``) read sensibly on the dashboard: "no user named", or
the raw value the tool sent, escaped."""

from __future__ import annotations

from starlette.testclient import TestClient

from securitybot.service import build_service
from securitybot.store.db import Database
from securitybot.store.models import Alert
from tests.dashboard.test_dashboard import log_in, settings


def test_the_queue_shows_no_user_named_or_the_raw_value_escaped(db: Database, db_url: str) -> None:
    with db.write() as s:
        for user_given, title in (("", "Disk almost full"), ("<b>root</b>", "Shell in pod")):
            s.add(Alert(kind="default", severity="medium", source="falco", user_given=user_given,
                        title=title, status="escalated", escalation_reason="no_user",
                        policy={}, details={}))  # fmt: skip
    _runtime, app = build_service(settings(db_url), db)
    with TestClient(app, follow_redirects=False) as client:
        log_in(client)
        page = client.get("/dashboard/alerts").text
        overview = client.get("/dashboard").text

    assert "no user named" in page and "no user named" in overview
    assert "&lt;b&gt;root&lt;/b&gt;" in page and "<b>root</b>" not in page
    assert "no_user" in overview
