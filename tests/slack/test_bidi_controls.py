"""Bidirectional controls in untrusted text are shown, not obeyed (issue #24.9).

U+202E and its kin in an alert's title could make a Slack message, the dashboard, App Home or a
page read backwards. Every surface shows them as ``[U+202E]`` (``untrusted.shown``); the API and
stored rows keep them as sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from securitybot import untrusted
from securitybot.flows.timeline import timeline_text
from securitybot.kinds import load_kinds
from securitybot.paging.payloads import Escalation, opsgenie_create, pagerduty_trigger
from securitybot.paging.policy import Vendor
from securitybot.service import build_service
from securitybot.shipped import ALERTS_DIR
from securitybot.slack import app_home, messages
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog
from tests.api.conftest import api_settings, auth
from tests.dashboard.test_dashboard import log_in, seed, settings
from tests.slack.helpers import make_alert

KINDS = load_kinds(ALERTS_DIR)
AT = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
# UAX #9's embeddings and overrides, isolates, and the three marks.
CONTROLS = [*map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)), "\u200e",
            "\u200f", "\u061c"]  # fmt: skip
# "flurb -export" that would render as "flurb -tropxe" style: an override, then its text.
EVIL = "flurb \u202eexport-\u202c on host\u2067 build\u2069 \u200f\u200e\u061c" + "".join(CONTROLS)


def texts(node: Any) -> Iterator[str]:
    """Every string in a Block Kit payload (mrkdwn and plain text alike)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from texts(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from texts(value)


def assert_shown(*payloads: Any) -> None:
    joined = "\n".join(t for p in payloads for t in texts(p))
    assert not any(c in joined for c in CONTROLS), [c for c in CONTROLS if c in joined]
    assert "[U+202E]" in joined and "[U+2067]" in joined


def evil_alert(**fields: object) -> Any:
    values: dict[str, object] = {
        "title": EVIL, "description": EVIL, "user_given": f"{EVIL}@example.com",
        "details": {"host": EVIL, "command": EVIL, EVIL: EVIL}, "outcome": EVIL,
    }  # fmt: skip
    return make_alert(**(values | fields))


def test_shown_makes_every_control_visible_and_leaves_other_text() -> None:
    assert untrusted.shown("a\u202eb") == "a[U+202E]b"
    assert untrusted.shown("\u2066\u2069\u200e\u200f\u061c") == (
        "[U+2066][U+2069][U+200E][U+200F][U+061C]"
    )
    assert untrusted.shown("שלום, مرحبا, plain ascii") == "שלום, مرحبا, plain ascii"
    assert all(untrusted.shown(c) == f"[U+{ord(c):04X}]" for c in CONTROLS)
    assert {chr(c) for c in untrusted.BIDI_CONTROLS} == set(CONTROLS)


@pytest.mark.parametrize("kind", ["sensitive_command", "default"])
def test_slack_dm_answered_and_escalation_show_the_controls(kind: str) -> None:
    alert = evil_alert(kind=kind)
    dm = messages.dm_message(alert, KINDS.get(kind), first_name=EVIL, greet=True,
                             grouped=[make_alert(id=43, title=EVIL)])  # fmt: skip
    answered = messages.answered_message(alert, KINDS.get(kind), "Thanks.", offer_snooze=True)
    row = AuditLog(action="alert.user_denied", actor="UALICE", details={"comment": EVIL})
    escalation = messages.escalation_message(
        evil_alert(kind=kind, user_id=None, claimed_by=EVIL), KINDS.get(kind),
        [(AT, timeline_text(row))],
    )  # fmt: skip
    assert_shown(dm, answered, escalation)


def test_app_home_shows_the_controls() -> None:
    alert = evil_alert(status="awaiting_ack")
    team = app_home.TeamView(queue=[evil_alert(escalation_reason=EVIL)])
    assert_shown(app_home.home_view([alert], [evil_alert(status="closed")], team))


def test_paging_summaries_show_the_controls() -> None:
    e = Escalation(alert_id=42, kind="sensitive_command", severity="high", title=EVIL,
                   description=EVIL, user=EVIL, user_id=None, reason="not_me", source=EVIL,
                   details={"host": EVIL}, escalated_at=AT, timeline=[(AT, EVIL)])  # fmt: skip
    pd = pagerduty_trigger(e, "k")["payload"]
    og = opsgenie_create(e, "a", responders=[], tags=[])
    shown = [e.summary(Vendor.PAGERDUTY), pd["summary"], pd["source"], pd["group"],
             og["message"], og["description"]]  # fmt: skip
    assert_shown(shown)
    # The structured details are data for the investigator, kept as sent (like the API).
    assert pd["custom_details"]["title"] == EVIL


@pytest.fixture
def dash(db: Database, db_url: str) -> Iterator[TestClient]:
    _runtime, app = build_service(settings(db_url), db)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def test_the_dashboard_shows_the_controls(dash: TestClient, db: Database) -> None:
    ids = seed(db)
    with db.write() as s:
        alert = s.get(Alert, ids["escalated"])
        assert alert is not None
        alert.title, alert.description, alert.details = EVIL, EVIL, {"host": EVIL}
        alert.escalation_reason = "not_me"
    assert log_in(dash).status_code == 303
    for path in ("/dashboard", "/dashboard/alerts", f"/dashboard/alerts/{ids['escalated']}"):
        page = dash.get(path)
        assert page.status_code == 200, path
        assert not any(c in page.text for c in CONTROLS), path
        assert "[U+202E]" in page.text, path


def test_the_api_keeps_the_text_as_sent(db: Database, db_url: str) -> None:
    _runtime, app = build_service(api_settings(db_url), db)
    with TestClient(app) as c:
        body = {"kind": "sensitive_command", "user": "alice@example.com", "title": EVIL,
                "details": {"command": EVIL}}  # fmt: skip
        created = c.post("/api/v1/alerts", json=body, headers=auth())
        assert created.status_code == 201, created.text
        got = c.get(f"/api/v1/alerts/{created.json()['id']}", headers=auth()).json()
        assert got["title"] == EVIL and got["details"]["command"] == EVIL
