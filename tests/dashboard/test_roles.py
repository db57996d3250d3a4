"""Dashboard roles: every route says which role it needs, and each role gets exactly that.

ACCESS lists every dashboard route. A route added to the dashboard without an entry here
fails test_every_dashboard_route_is_listed; one whose entry claims a role that the route does
not check fails the per-role test, which calls every route as every role.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.routing import Route
from starlette.testclient import TestClient

from securitybot.flows import suppressions
from securitybot.service import build_service
from securitybot.store.aer_budget_models import AerHeldBatch
from securitybot.store.db import Database
from securitybot.store.models import AuditLog, Snooze, utcnow
from securitybot.store.storm_models import Storm
from securitybot.store.suppression_models import SuppressionRule
from tests.dashboard.test_dashboard import HASH, PASSWORD, seed, settings

PUBLIC = "public"
ROLES = ("viewer", "responder", "admin")
ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/dashboard"): "viewer",
    ("GET", "/dashboard/"): "viewer",
    ("GET", "/dashboard/alerts"): "viewer",
    ("GET", "/dashboard/alerts/{alert_id}"): "viewer",
    ("GET", "/dashboard/snoozes"): "viewer",
    ("GET", "/dashboard/suppressions"): "viewer",
    ("GET", "/dashboard/held"): "viewer",
    ("GET", "/dashboard/storms"): "viewer",
    ("POST", "/dashboard/logout"): "viewer",
    # Responders handle escalations and snoozes; admins also manage suppression rules.
    ("POST", "/dashboard/snoozes/{snooze_id}/revoke"): "responder",
    ("POST", "/dashboard/suppressions/{rule_id}/revoke"): "admin",
    # Installing the app in another Slack workspace (slack.oauth) is for admins.
    ("GET", "/dashboard/slack/install"): "admin",
    ("GET", "/dashboard/slack/install/start"): "admin",
    # Held AER resets are an escalation: responders release or discard them.
    ("POST", "/dashboard/held/{batch_id}/release"): "responder",
    ("POST", "/dashboard/held/{batch_id}/discard"): "responder",
    # So is a storm: responders release, discard or escalate it.
    ("POST", "/dashboard/storms/{storm_id}/release"): "responder",
    ("POST", "/dashboard/storms/{storm_id}/discard"): "responder",
    ("POST", "/dashboard/storms/{storm_id}/escalate"): "responder",
    ("GET", "/dashboard/login"): PUBLIC,
    ("POST", "/dashboard/login"): PUBLIC,
    ("GET", "/dashboard/oidc/login"): PUBLIC,
    ("GET", "/dashboard/oidc/callback"): PUBLIC,
    ("GET", "/dashboard/static/dashboard.css"): PUBLIC,
}
OIDC = {
    "issuer": "https://idp.example.com",
    "client_id": "securitybot",
    "client_secret": "x" * 32,
    "redirect_url": "https://securitybot.example.com/dashboard/oidc/callback",
}
USERS = [{"username": role, "password_hash": HASH, "role": role} for role in ROLES]


def role_settings(db_url: str, **extra: Any) -> Any:
    return settings(db_url, users=USERS, oidc=OIDC, **extra)


@pytest.fixture
def ids(db: Database) -> dict[str, int]:
    out = seed(db)
    with db.write() as s:
        rule = suppressions.create(
            s, kind="sensitive_command", matchers={"host": "build-*"}, reason="CI",
            actor="ULEAD", expires_at=utcnow() + timedelta(hours=4), via={"via": "test"},
        )  # fmt: skip
        out["rule"] = rule.id
        held = AerHeldBatch(org="T1", status="open", resets=0, anomalies=0, budget_count=10,
                            budget_per=3600.0, version=1, shown_version=0, opened_at=utcnow(),
                            last_at=utcnow())  # fmt: skip
        s.add(held)
        s.flush()
        out["held"] = held.id
        storm = Storm(key="k:s", kind="k", source="s", status="open", people=25, held=0,
                      max_people=25, window=600.0, version=1, shown_version=0,
                      opened_at=utcnow(), last_at=utcnow())  # fmt: skip
        s.add(storm)
        s.flush()
        out["storm"] = storm.id
    return out


@pytest.fixture
def app(db: Database, db_url: str, ids: dict[str, int]) -> Any:
    _rt, app = build_service(role_settings(db_url), db)
    return app


def dashboard_routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/dashboard"):
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
            for method in route.methods or ():
                if method != "HEAD":
                    found.add((method, path))
    return found


def sign_in(client: TestClient, username: str) -> str:
    page = client.get("/dashboard/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    resp = client.post(
        "/dashboard/login",
        data={"csrf": token.group(1), "username": username, "password": PASSWORD},
    )
    assert resp.status_code == 303, resp.text
    overview = client.get("/dashboard")
    csrf = re.search(r'name="csrf" value="([^"]+)"', overview.text)
    assert csrf
    return csrf.group(1)


def call(client: TestClient, method: str, path: str, ids: dict[str, int], csrf: str) -> Any:
    url = path.format(alert_id=ids["escalated"], snooze_id=ids["snooze"], rule_id=ids["rule"],
                      batch_id=ids["held"], storm_id=ids["storm"])  # fmt: skip
    if method == "GET":
        return client.get(url)
    return client.post(url, data={"csrf": csrf})


def test_every_dashboard_route_is_listed(app: Any) -> None:
    routes = dashboard_routes(app)
    assert routes - ACCESS.keys() == set(), "a new dashboard route needs an entry in ACCESS"
    assert ACCESS.keys() - routes == set(), "ACCESS lists a route the dashboard no longer has"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_its_routes(
    app: Any, ids: dict[str, int], db: Database, role: str
) -> None:
    rank = ROLES.index(role)
    # Refusals first, so that an allowed revoke does not hide a refused one.
    ordered = sorted(ACCESS.items(), key=lambda kv: kv[1] != PUBLIC and ROLES.index(kv[1]) <= rank)
    with TestClient(app, follow_redirects=False) as client:
        csrf = sign_in(client, role)
        for (method, path), needed in ordered:
            if needed == PUBLIC or path == "/dashboard/logout":
                continue  # the public pages; signing out is checked below, last
            resp = call(client, method, path, ids, csrf)
            if ROLES.index(needed) <= rank:
                assert resp.status_code not in (401, 403), (role, method, path, resp.text)
                assert "/dashboard/login" not in resp.headers.get("location", ""), (role, path)
            else:
                assert resp.status_code == 403, (role, method, path, resp.status_code)
                assert f"needs the {needed} role" in resp.text, resp.text
        assert client.post("/dashboard/logout", data={"csrf": csrf}).status_code == 303
        assert client.get("/dashboard").status_code == 303


def test_anonymous_requests_reach_only_the_public_routes(app: Any, ids: dict[str, int]) -> None:
    with TestClient(app, follow_redirects=False) as client:
        for (method, path), needed in ACCESS.items():
            if needed == PUBLIC:
                continue
            resp = call(client, method, path, ids, "x")
            if method == "GET":
                assert resp.status_code == 303, path
                assert resp.headers["location"].startswith("/dashboard/login?next=")
            else:
                assert resp.status_code == 401, path


def test_a_refused_action_changes_nothing_and_the_allowed_one_is_audited_with_the_role(
    app: Any, ids: dict[str, int], db: Database
) -> None:
    with TestClient(app, follow_redirects=False) as client:
        csrf = sign_in(client, "responder")
        path = f"/dashboard/suppressions/{ids['rule']}/revoke"
        assert client.post(path, data={"csrf": csrf}).status_code == 403
        resp = client.post(f"/dashboard/snoozes/{ids['snooze']}/revoke", data={"csrf": csrf})
        assert resp.status_code == 303
    with db.read() as s:
        assert s.get(SuppressionRule, ids["rule"]).revoked_at is None  # type: ignore[union-attr]
        assert s.get(Snooze, ids["snooze"]).revoked_by == "dashboard:responder"  # type: ignore[union-attr]
        [row] = s.scalars(sa.select(AuditLog).where(AuditLog.action == "snooze.revoked")).all()
    assert row.details["role"] == "responder" and row.details["auth"] == "password"


def test_pages_offer_only_the_actions_a_role_may_take(app: Any, ids: dict[str, int]) -> None:
    for role, snooze_button, rule_button in (
        ("viewer", False, False),
        ("responder", True, False),
        ("admin", True, True),
    ):
        with TestClient(app, follow_redirects=False) as client:
            sign_in(client, role)
            snoozes = client.get("/dashboard/snoozes").text
            rules = client.get("/dashboard/suppressions").text
        assert (f"/dashboard/snoozes/{ids['snooze']}/revoke" in snoozes) is snooze_button, role
        assert (f"/dashboard/suppressions/{ids['rule']}/revoke" in rules) is rule_button, role
        assert f'<span class="role">{role}</span>' in snoozes
