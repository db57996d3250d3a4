"""A timeline entry's details read as the JSON that was stored: `->` and `<b>` as themselves
(escaped once, as HTML), not as JSON escapes (`\\u003e`) shown as text."""

from __future__ import annotations

from starlette.testclient import TestClient

from securitybot.service import build_service
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert
from tests.dashboard.test_dashboard import log_in, settings


def test_details_show_arrows_and_markup_as_text(db: Database, db_url: str) -> None:
    with db.write() as s:
        alert = Alert(kind="default", severity="medium", source="test", user_given="",
                      title="moved", status="escalated", escalation_reason="no_user",
                      policy={}, details={})  # fmt: skip
        s.add(alert)
        s.flush()
        details = {"path": "a -> b", "html": "<b>x</b> & 'y'", "name": "Zoë"}
        alert_store.audit(s, alert_id=alert.id, actor="system", action="note", details=details)
        alert_id = alert.id
    _runtime, app = build_service(settings(db_url), db)
    with TestClient(app, follow_redirects=False) as client:
        log_in(client)
        page = client.get(f"/dashboard/alerts/{alert_id}").text

    assert "a -&gt; b" in page and "\\u003e" not in page and "\\u003c" not in page
    assert "&lt;b&gt;x&lt;/b&gt; &amp; " in page and "<b>x</b>" not in page
    assert "Zoë" in page
