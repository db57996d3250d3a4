"""Where a dashboard role comes from besides OpenID Connect: local break-glass users (admin
unless configured, refused when `dashboard.local_users: false`) and the trusted proxy header
(roles from a second trusted header, or a static mapping; admin when neither is configured)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from securitybot.config import ConfigError, load_config
from securitybot.demo.app import free_port
from securitybot.service import build_service
from securitybot.store.db import Database
from tests.dashboard.test_dashboard import HASH, SECRET, log_in, settings
from tests.dashboard.test_roles import OIDC

HEADER = "X-Auth-User"
GROUPS = "X-Auth-Groups"


def client_for(db: Database, db_url: str, **cfg: Any) -> TestClient:
    _rt, app = build_service(settings(db_url, **cfg), db)
    return TestClient(app, follow_redirects=False)


def role_shown(resp: Any) -> str | None:
    marker = '<span class="role">'
    if marker not in resp.text:
        return None
    return str(resp.text.split(marker, 1)[1].split("<", 1)[0])


def test_a_local_user_configured_before_roles_existed_is_an_admin(
    db: Database, db_url: str
) -> None:
    with client_for(db, db_url) as c:  # users: [{username, password_hash}], as before
        assert log_in(c).status_code == 303
        assert role_shown(c.get("/dashboard")) == "admin"


def test_a_local_user_gets_the_role_configured_for_them(db: Database, db_url: str) -> None:
    users = [{"username": "ada", "password_hash": HASH, "role": "viewer"}]
    with client_for(db, db_url, users=users) as c:
        assert log_in(c).status_code == 303
        assert role_shown(c.get("/dashboard")) == "viewer"


def test_local_users_can_be_disabled_and_are_then_refused(db: Database, db_url: str) -> None:
    with client_for(db, db_url) as c:
        assert log_in(c).status_code == 303
        cookie = c.cookies.get("sb_dashboard")
    with client_for(db, db_url, local_users=False, oidc=OIDC) as c:
        page = c.get("/dashboard/login")
        assert 'name="password"' not in page.text and 'id="oidc-sign-in"' in page.text
        # The form is gone, and a post made without it is refused before any password check.
        token = c.cookies.get("sb_login_csrf")  # set with the page, form or not
        resp = c.post("/dashboard/login", data={"csrf": token, "username": "ada", "password": "x"})
        assert resp.status_code == 403 and "Local sign-in is disabled" in resp.text
        # A session a local user opened before is no longer honoured.
        c.cookies.set("sb_dashboard", cookie or "")
        assert c.get("/dashboard").status_code == 303


def test_disabling_local_users_with_no_other_way_in_is_a_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"dashboard:\n  enabled: true\n  session_secret: {SECRET}\n  local_users: false\n"
        f"  users: [{{username: ada, password_hash: '{HASH}'}}]\n"
    )
    with pytest.raises(ConfigError, match="local_users"):
        load_config(cfg)


def test_a_trusted_header_alone_keeps_todays_access(db: Database, db_url: str) -> None:
    with client_for(db, db_url, users=[], trusted_header=HEADER) as c:
        assert role_shown(c.get("/dashboard", headers={HEADER: "grace"})) == "admin"


def test_roles_from_a_second_trusted_header(db: Database, db_url: str) -> None:
    roles = {"admin": ["sec-admins"], "responder": ["sec-oncall"], "viewer": ["sec-analysts"]}
    cfg = {"users": [], "trusted_header": HEADER, "trusted_groups_header": GROUPS, "roles": roles}
    with client_for(db, db_url, **cfg) as c:
        both = {HEADER: "grace", GROUPS: "staff, sec-analysts,sec-oncall"}
        assert role_shown(c.get("/dashboard", headers=both)) == "responder"  # the highest
        # The proxy vouches per request: the same person with other groups has another role.
        fewer = {HEADER: "grace", GROUPS: "sec-analysts"}
        assert role_shown(c.get("/dashboard", headers=fewer)) == "viewer"
        refused = c.get("/dashboard", headers={HEADER: "grace", GROUPS: "marketing"})
        assert refused.status_code == 403 and "no Securitybot role" in refused.text
        assert "grace" in refused.text
        assert c.get("/dashboard", headers={HEADER: "grace"}).status_code == 403


def test_roles_from_a_static_mapping_of_header_users(db: Database, db_url: str) -> None:
    cfg = {"users": [], "trusted_header": HEADER, "trusted_header_roles": {"grace": "responder"}}
    with client_for(db, db_url, **cfg) as c:
        assert role_shown(c.get("/dashboard", headers={HEADER: "grace"})) == "responder"
        assert c.get("/dashboard", headers={HEADER: "mallory"}).status_code == 403


def test_a_dashboard_with_only_oidc_is_valid_and_offers_only_single_sign_on(
    db: Database, db_url: str
) -> None:
    # The provider's address is a closed local port: discovery cannot reach it.
    down = {**OIDC, "issuer": f"http://127.0.0.1:{free_port()}"}
    with client_for(db, db_url, users=[], oidc=down) as c:
        page = c.get("/dashboard/login")
        assert 'id="oidc-sign-in"' in page.text and 'name="password"' not in page.text
        start = c.get("/dashboard/oidc/login", params={"next": "//evil.example/x"})
        # A clear page, not a 500.
        assert start.status_code == 502 and "identity provider" in start.text
