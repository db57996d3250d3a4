"""Signing in to the dashboard through a real OpenID Connect provider (oidc-provider on Node.js),
in Debian's Chromium: groups become roles, a person without a mapped role is refused, and a
tampered state, a callback from another browser and an expired ID token sign nobody in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from securitybot.config import Settings
from securitybot.demo.app import free_port
from securitybot.service import build_service
from securitybot.store.dashboard_models import DashboardSessionRow
from securitybot.store.db import Database
from securitybot.store.models import AuditLog
from tests.oidc.provider import PEOPLE, ROLES, OidcProvider, oidc_provider
from tests.uvicorn_thread import serving

CALLBACK = "/dashboard/oidc/callback"


def dashboard_settings(db_url: str, idp: OidcProvider, port: int) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": db_url},
            "scheduler": {"enabled": False},
            "dashboard": {
                "enabled": True,
                "session_secret": "o" * 40,
                "oidc": idp.dashboard_config(f"http://127.0.0.1:{port}{CALLBACK}"),
                "roles": ROLES,
            },
        }
    )


@contextmanager
def served(settings: Settings, db: Database, port: int) -> Iterator[str]:
    _rt, app = build_service(settings, db)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    with serving(config):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def idp_and_dashboard(db: Database, db_url: str, **idp_options: Any) -> Iterator[tuple[str, Any]]:
    port = free_port()
    with oidc_provider([f"http://127.0.0.1:{port}{CALLBACK}"], **idp_options) as idp:
        settings = dashboard_settings(db_url, idp, port)
        with served(settings, db, port) as base:
            yield base, settings


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context()
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


def start_sign_in(page: Any, base: str, login: str, path: str = "/dashboard/alerts") -> None:
    """From a dashboard page through the provider's sign-in and consent, up to the redirect
    back to the dashboard."""
    page.goto(f"{base}{path}")
    page.click("a#oidc-sign-in")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any password: the test provider checks none")
    page.click("button[type=submit]")
    page.click("button:has-text('Continue')")  # the provider's consent page


def capture_callback(page: Any, base: str, login: str) -> str:
    """Sign in at the provider, but stop before the browser is sent back to us: the callback
    URL (code and state) is returned unused.

    The provider answers its consent form with a redirect to itself, which redirects to us;
    the browser follows redirects without asking Playwright's routes, so the consent post is
    made here (with the browser's cookies) and its redirects read one at a time.
    """
    captured: list[str] = []

    def consent(route: Any) -> None:
        # The provider's login and consent forms both post to /interaction/<uid>.
        if "prompt=consent" not in (route.request.post_data or ""):
            route.continue_()
            return
        answer = route.fetch(max_redirects=0)
        resume = urljoin(route.request.url, answer.headers["location"])
        back = page.context.request.get(resume, max_redirects=0)
        captured.append(urljoin(resume, back.headers["location"]))
        route.fulfill(status=200, body="held")

    page.route("**/interaction/*", consent)
    start_sign_in(page, base, login)
    page.wait_for_load_state()
    page.unroute("**/interaction/*")
    assert captured and captured[0].startswith(f"{base}{CALLBACK}?"), captured
    return captured[0]


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def signed_in(page: Any, base: str) -> bool:
    page.goto(f"{base}/dashboard")
    return "/dashboard/login" not in page.url


def audit_rows(db: Database, action: str) -> list[AuditLog]:
    with db.read() as s:
        return list(s.scalars(sa.select(AuditLog).where(AuditLog.action == action)))


def test_people_sign_in_through_the_provider_with_the_role_their_groups_map_to(
    db: Database, db_url: str, browser: Any
) -> None:
    with idp_and_dashboard(db, db_url) as (base, _settings):
        for login, role in (("alice", "admin"), ("bob", "responder"), ("carol", "viewer")):
            ctx = browser.new_context()
            ctx.set_default_timeout(15_000)
            page = ctx.new_page()
            try:
                start_sign_in(page, base, login)
                page.wait_for_url(f"{base}/dashboard/alerts")  # back where they started
                assert page.locator(".who").inner_text() == PEOPLE[login]["email"]
                assert page.locator(".role").inner_text() == role
                # The session is our own server-side one, not the provider's.
                cookies = {c["name"]: c for c in ctx.cookies(f"{base}/dashboard/")}
                assert cookies["sb_dashboard"]["httpOnly"]
                assert "sb_oidc" not in cookies  # the pending sign-in is used up
            finally:
                ctx.close()
    logins = {r.details["email"]: r for r in audit_rows(db, "dashboard.login")}
    assert logins["bob@example.com"].actor == "dashboard:bob@example.com"
    assert logins["bob@example.com"].details["sub"] == "bob"
    assert logins["bob@example.com"].details["role"] == "responder"
    assert logins["bob@example.com"].details["auth"] == "oidc"
    with db.read() as s:
        rows = s.scalars(sa.select(DashboardSessionRow)).all()
    assert sorted((r.via, r.role, r.subject) for r in rows) == [
        ("oidc", "admin", "alice"),
        ("oidc", "responder", "bob"),
        ("oidc", "viewer", "carol"),
    ]


def test_a_person_whose_groups_map_to_no_role_is_refused(
    db: Database, db_url: str, context: Any
) -> None:
    page = context.new_page()
    with idp_and_dashboard(db, db_url) as (base, _settings):
        start_sign_in(page, base, "dave")
        page.wait_for_url(f"{base}{CALLBACK}*")
        assert "no Securitybot role" in page.locator("main").inner_text()
        assert "dave@example.com" in page.locator("main").inner_text()
        assert not signed_in(page, base)
    [refused] = audit_rows(db, "dashboard.login_refused")
    assert refused.details["sub"] == "dave" and refused.details["email"] == "dave@example.com"
    assert refused.details["reason"] == "no_role"
    assert audit_rows(db, "dashboard.login") == []


def test_a_tampered_state_signs_nobody_in(db: Database, db_url: str, context: Any) -> None:
    page = context.new_page()
    with idp_and_dashboard(db, db_url) as (base, _settings):
        callback = capture_callback(page, base, "alice")
        state = dict(parse_qsl(urlsplit(callback).query))["state"]
        resp = page.goto(with_query(callback, state=state[:-2] + "xx"))
        assert resp.status == 400
        assert "state" in page.locator("main").inner_text()
        assert not signed_in(page, base)
        # The pending sign-in was spent by the failed attempt: the genuine callback, replayed
        # afterwards, does not sign in either.
        assert page.goto(callback).status == 400
        assert not signed_in(page, base)
    assert audit_rows(db, "dashboard.login") == []


def test_a_callback_carried_to_another_browser_signs_nobody_in(
    db: Database, db_url: str, browser: Any, context: Any
) -> None:
    # Login CSRF: an attacker completes their own sign-in and sends the callback to a victim.
    with idp_and_dashboard(db, db_url) as (base, _settings):
        callback = capture_callback(context.new_page(), base, "alice")
        victim = browser.new_context()
        try:
            page = victim.new_page()
            assert page.goto(callback).status == 400
            assert "another browser" in page.locator("main").inner_text()
            assert not signed_in(page, base)
        finally:
            victim.close()


def test_an_expired_id_token_signs_nobody_in(db: Database, db_url: str, context: Any) -> None:
    # The provider's clock runs ten minutes late, so the ID token it signs (five minutes to
    # live) expired before it was issued: beyond any clock skew the dashboard tolerates.
    page = context.new_page()
    with idp_and_dashboard(db, db_url, clock_offset=-600) as (base, _settings):
        start_sign_in(page, base, "alice")
        page.wait_for_url(f"{base}{CALLBACK}*")
        text = page.locator("main").inner_text()
        assert "ID token" in text and "expired" in text
        assert not signed_in(page, base)
    [failed] = audit_rows(db, "dashboard.login_failed")
    assert failed.details["reason"] == "id_token_invalid"
    assert audit_rows(db, "dashboard.login") == []


def test_sign_out_ends_the_session_here_and_after_a_restart(
    db: Database, db_url: str, context: Any
) -> None:
    page = context.new_page()
    with idp_and_dashboard(db, db_url) as (base, settings):
        start_sign_in(page, base, "alice", path="/dashboard")
        page.wait_for_url(f"{base}/dashboard")
        jar = context.cookies(f"{base}/dashboard/")
        [cookie] = [c["value"] for c in jar if c["name"] == "sb_dashboard"]
        page.click("button:has-text('Sign out')")
        page.wait_for_url(f"{base}/dashboard/login")
        assert not signed_in(page, base)
    assert [r.actor for r in audit_rows(db, "dashboard.logout")] == ["dashboard:alice@example.com"]
    # The same cookie, sent to a restarted service on the same database, is still refused.
    with served(settings, db, free_port()) as again:
        resp = httpx.get(f"{again}/dashboard", cookies={"sb_dashboard": cookie})
        assert resp.status_code == 303 and "/dashboard/login" in resp.headers["location"]
