"""Dashboard access control (login, CSRF, cookies, trusted header) and what the pages show."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from starlette.testclient import TestClient

from securitybot.cli import main
from securitybot.config import ConfigError, Settings, load_config
from securitybot.dashboard.auth import hash_password
from securitybot.dashboard.queries import AER_RESET_ACTION
from securitybot.service import build_service
from securitybot.store import alerts as alert_store
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, Snooze, utcnow

PASSWORD = "correct horse battery staple"
HASH = hash_password(PASSWORD)
SECRET = "s" * 40
SECRET_TITLE = "flurb -export on secretserver42"


def settings(db_url: str, **dashboard: Any) -> Settings:
    cfg = {
        "enabled": True,
        "session_secret": SECRET,
        "users": [{"username": "ada", "password_hash": HASH}],
        **dashboard,
    }
    return Settings.model_validate(
        {"database": {"url": db_url}, "scheduler": {"enabled": False}, "dashboard": cfg}
    )


def seed(db: Database) -> dict[str, int]:
    now = utcnow()
    with db.write() as s:
        common = {
            "severity": "high",
            "source": "test",
            "user_given": "alice@example.com",
            "user_id": "UALICE",
            "user_name": "alice",
            "policy": {},
            "details": {},
        }
        escalated = Alert(
            kind="sensitive_command",
            title=SECRET_TITLE,
            status="escalated",
            escalation_reason="duo_timeout",
            escalated_at=now,
            **common,
        )
        resolved = Alert(
            kind="new_login_location",
            title="Sign-in from Lisbon",
            status="resolved",
            outcome="confirmed",
            **common,
        )
        s.add_all([escalated, resolved])
        s.flush()
        for action, minutes in (
            ("alert.ingested", 0),
            ("alert.dm_sent", 0),
            ("alert.user_confirmed", 3),
        ):
            alert_store.audit(
                s,
                alert_id=resolved.id,
                actor="system",
                action=action,
                at=now + timedelta(minutes=minutes),
            )
        alert_store.audit(
            s,
            alert_id=escalated.id,
            actor="duo",
            action="alert.duo_timeout",
            from_status="awaiting_2fa",
            to_status="escalated",
        )
        alert_store.audit(s, actor="aer", action=AER_RESET_ACTION, org="acme")
        snooze = Snooze(
            user_id="UALICE",
            kind="new_login_location",
            scope={"location": "Lisbon"},
            scope_key="k",
            source_alert_id=resolved.id,
            expires_at=now + timedelta(hours=1),
        )
        s.add(snooze)
        s.flush()
        return {"escalated": escalated.id, "resolved": resolved.id, "snooze": snooze.id}


@pytest.fixture
def ids(db: Database) -> dict[str, int]:
    return seed(db)


@pytest.fixture
def client(db: Database, db_url: str, ids: dict[str, int]) -> Iterator[TestClient]:
    _runtime, app = build_service(settings(db_url), db)
    with TestClient(app, follow_redirects=False) as c:
        yield c


def login_csrf(client: TestClient) -> str:
    page = client.get("/dashboard/login")
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def log_in(client: TestClient, password: str = PASSWORD) -> Any:
    token = login_csrf(client)
    return client.post(
        "/dashboard/login",
        data={"csrf": token, "username": "ada", "password": password, "next": "/dashboard"},
    )


def page_csrf(client: TestClient, path: str = "/dashboard/snoozes") -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert match
    return match.group(1)


def audit_actions(db: Database) -> list[tuple[str, str]]:
    with db.read() as s:
        return [(r.actor, r.action) for r in s.scalars(sa.select(AuditLog).order_by(AuditLog.id))]


def test_anonymous_requests_get_nothing(client: TestClient, ids: dict[str, int]) -> None:
    for path in (
        "/dashboard",
        "/dashboard/alerts",
        f"/dashboard/alerts/{ids['escalated']}",
        "/dashboard/snoozes",
    ):
        resp = client.get(path)
        assert resp.status_code == 303, path
        assert resp.headers["location"].startswith("/dashboard/login?next=")
        assert SECRET_TITLE not in resp.text and "alice" not in resp.text
    resp = client.post(f"/dashboard/snoozes/{ids['snooze']}/revoke", data={"csrf": "x"})
    assert resp.status_code == 401 and "alice" not in resp.text
    client.cookies.set("sb_dashboard", "eyJ1IjoiYWRhIn0.forged")
    assert client.get("/dashboard").status_code == 303


def test_wrong_password_is_refused_and_audited(client: TestClient, db: Database) -> None:
    resp = log_in(client, "wrong password")
    assert resp.status_code == 401 and "Wrong username or password" in resp.text
    assert "sb_dashboard" not in resp.headers.get("set-cookie", "")
    assert client.get("/dashboard").status_code == 303
    assert ("dashboard:ada", "dashboard.login_failed") in audit_actions(db)


def test_login_without_csrf_is_forbidden(client: TestClient) -> None:
    client.get("/dashboard/login")
    resp = client.post("/dashboard/login", data={"username": "ada", "password": PASSWORD})
    assert resp.status_code == 403


def test_repeated_failures_are_throttled(client: TestClient) -> None:
    for _ in range(5):
        assert log_in(client, "nope").status_code == 401
    assert log_in(client).status_code == 429


def test_login_shows_queue_charts_timeline_and_cookie_flags(
    client: TestClient, ids: dict[str, int], db: Database
) -> None:
    resp = log_in(client)
    assert resp.status_code == 303 and resp.headers["location"] == "/dashboard"
    cookie = resp.headers["set-cookie"]
    assert "sb_dashboard=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/dashboard" in cookie and "Secure" not in cookie  # plain http here
    overview = client.get("/dashboard")
    assert overview.status_code == 200
    assert SECRET_TITLE in overview.text  # in the escalation queue
    assert "duo_timeout" in overview.text and overview.text.count("<svg") == 4
    assert "acme" in overview.text  # AER session resets per org
    assert "default-src 'none'" in overview.headers["content-security-policy"]
    filtered = client.get("/dashboard/alerts", params={"status": "resolved", "since": "24h"})
    assert "Sign-in from Lisbon" in filtered.text and SECRET_TITLE not in filtered.text
    detail = client.get(f"/dashboard/alerts/{ids['resolved']}")
    assert "alert.user_confirmed" in detail.text and "alert.dm_sent" in detail.text
    assert client.get("/dashboard/alerts/99999").status_code == 404
    assert ("dashboard:ada", "dashboard.login") in audit_actions(db)


def test_revoking_a_snooze_needs_csrf_and_is_audited(
    client: TestClient, ids: dict[str, int], db: Database
) -> None:
    log_in(client)
    path = f"/dashboard/snoozes/{ids['snooze']}/revoke"
    assert client.post(path, data={}).status_code == 403
    assert client.post(path, data={"csrf": "guess"}).status_code == 403
    with db.read() as s:
        assert s.get(Snooze, ids["snooze"]).revoked_at is None  # type: ignore[union-attr]
    resp = client.post(path, data={"csrf": page_csrf(client)})
    assert resp.status_code == 303
    with db.read() as s:
        assert s.get(Snooze, ids["snooze"]).revoked_by == "dashboard:ada"  # type: ignore[union-attr]
    assert ("dashboard:ada", "snooze.revoked") in audit_actions(db)


def test_logout_needs_csrf_and_ends_the_session(client: TestClient, db: Database) -> None:
    log_in(client)
    old = client.cookies.get("sb_dashboard")
    assert client.post("/dashboard/logout", data={}).status_code == 403
    resp = client.post("/dashboard/logout", data={"csrf": page_csrf(client, "/dashboard")})
    assert resp.status_code == 303
    assert ("dashboard:ada", "dashboard.logout") in audit_actions(db)
    client.cookies.clear()
    assert old
    # The old cookie is still validly signed, but it was revoked at logout.
    client.cookies.set("sb_dashboard", old)
    assert client.get("/dashboard").status_code == 303


def test_secure_cookie_behind_tls(db: Database, db_url: str, ids: dict[str, int]) -> None:
    _rt, app = build_service(settings(db_url), db)
    with TestClient(app, follow_redirects=False) as c:
        resp = c.get("/dashboard/login", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in resp.headers["set-cookie"]
    _rt, app = build_service(settings(db_url, secure_cookies=True), db)
    with TestClient(app, follow_redirects=False) as c:
        assert "Secure" in c.get("/dashboard/login").headers["set-cookie"]


def test_trusted_header(db: Database, db_url: str, ids: dict[str, int]) -> None:
    _rt, app = build_service(settings(db_url, users=[], trusted_header="X-Auth-User"), db)
    with TestClient(app, follow_redirects=False) as c:
        assert c.get("/dashboard").status_code == 303
        resp = c.get("/dashboard", headers={"X-Auth-User": "grace"})
        assert resp.status_code == 200 and "grace" in resp.text
        assert "HttpOnly" in resp.headers["set-cookie"]
        # Without the header the proxy vouches for nobody, whatever cookie the browser holds.
        assert c.get("/dashboard").status_code == 303


def test_disabled_by_default_and_config_checks(db: Database, db_url: str, tmp_path: Any) -> None:
    off = Settings.model_validate({"database": {"url": db_url}, "scheduler": {"enabled": False}})
    _rt, app = build_service(off, db)
    with TestClient(app) as c:
        assert c.get("/dashboard").status_code == 404
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dashboard:\n  enabled: true\n  users: []\n")
    with pytest.raises(ConfigError, match="session_secret"):
        load_config(cfg)
    cfg.write_text(
        f"dashboard:\n  enabled: true\n  session_secret: {SECRET}\n"
        "  users: [{username: ada, password_hash: hunter2}]\n"
    )
    with pytest.raises(ConfigError, match="argon2"):
        load_config(cfg)


def test_anomalies_table_is_counted_when_present(
    client: TestClient, db: Database, backend: str
) -> None:
    names = set(sa.inspect(db.engine).get_table_names())
    with db.engine.begin() as conn:
        if not names & {"aer_anomalies", "anomalies"}:
            conn.execute(sa.text("CREATE TABLE anomalies (id INTEGER PRIMARY KEY, org TEXT)"))
        name = "aer_anomalies" if "aer_anomalies" in names else "anomalies"
        table = sa.Table(name, sa.MetaData(), autoload_with=conn)
        # Whatever the AER migration requires today: a plausible value for every NOT NULL column.
        row: dict[str, Any] = {}
        for col in table.c:
            if col.primary_key or col.nullable or col.server_default is not None:
                continue
            row[col.name] = _value_for(col, backend)
        conn.execute(table.insert().values(**{**row, "org": "globex"}))
    log_in(client)
    overview = client.get("/dashboard")
    assert "globex" in overview.text and "No AER anomalies table" not in overview.text


def _value_for(col: sa.Column[Any], backend: str) -> Any:
    if isinstance(col.type, sa.JSON):
        return {}
    if isinstance(col.type, sa.DateTime):
        # The store keeps naive UTC in SQLite and timestamptz in PostgreSQL.
        return utcnow() if backend == "postgres" else utcnow().replace(tzinfo=None)
    if isinstance(col.type, sa.Integer | sa.Float | sa.Numeric):
        return 0
    return "x"


def test_hash_password_cli() -> None:
    result = CliRunner().invoke(main, ["hash-password"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    hashed = result.output.strip().splitlines()[-1]
    assert hashed.startswith("$argon2id$")
    short = CliRunner().invoke(main, ["hash-password", "--password", "short"])
    assert short.exit_code != 0


def test_an_alert_okta_answered_names_okta_verify_in_its_timeline(
    client: TestClient, db: Database
) -> None:
    with db.write() as s:
        alert = Alert(kind="sensitive_command", title="okta-answered", status="escalated",
                      escalation_reason="duo_denied", duo_result="duo_denied", severity="high",
                      source="test", user_given="alice@example.com", user_id="UALICE",
                      policy={}, details={})  # fmt: skip
        s.add(alert)
        s.flush()
        alert_store.audit(s, alert_id=alert.id, actor="system", action="duo.push_sent",
                          details={"verifier": "okta", "detail": ""})  # fmt: skip
        alert_store.audit(s, alert_id=alert.id, actor="okta", action="alert.duo_denied",
                          details={"verifier": "okta", "comment": "REJECTED"})  # fmt: skip
        alert_id = alert.id
    log_in(client)
    page = client.get(f"/dashboard/alerts/{alert_id}").text
    assert "Okta Verify push sent" in page and "Okta Verify push denied" in page
    assert "<dt>Okta Verify</dt><dd>duo_denied</dd>" in page
    assert "Duo push" not in page
