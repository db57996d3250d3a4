"""Malformed credentials on every route: headers, cookies and form fields (issue #24.2).

Whatever a client puts in a credential header (``Authorization``, ``X-Slack-Signature``,
``X-Securitybot-*``, ``X-PagerDuty-Signature``), a cookie (the dashboard's session, login and
OIDC cookies) or a form field (``csrf``, ``username``, ``password``, ``next``...), the answer is
a 4xx (or the route's ordinary answer), never a 5xx, with at most one log line and no
traceback. Non-ASCII bytes are the usual culprit: ``hmac.compare_digest`` raises ``TypeError``
on a ``str`` holding one, so every secret is compared on bytes (``constant_time.equal``).
Runs on both stores, with a signed-in dashboard session so the CSRF checks behind it are reached.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route
from starlette.testclient import TestClient

from securitybot.config import Settings
from securitybot.dashboard.auth import LOGIN_COOKIE, SESSION_COOKIE, hash_password
from securitybot.dashboard.oidc_views import PENDING_COOKIE
from securitybot.service import build_service
from securitybot.store.db import Database, migrate
from tests.api.conftest import HMAC_SECRET, TOKEN
from tests.conftest import BACKENDS
from tests.dbs import database_url

EXAMPLES = int(os.environ.get("SECURITYBOT_FUZZ_EXAMPLES", "12"))
PASSWORD = "correct horse battery staple"
SLACK_SECRET = "slack-signing-secret-for-tests"

HEADERS = [
    "Authorization", "X-Slack-Signature", "X-Slack-Request-Timestamp", "X-Securitybot-Source",
    "X-Securitybot-Timestamp", "X-Securitybot-Nonce", "X-Securitybot-Signature",
    "X-PagerDuty-Signature", "X-Forwarded-For", "X-Forwarded-Proto",
]  # fmt: skip
COOKIES = [SESSION_COOKIE, LOGIN_COOKIE, PENDING_COOKIE]
FIELDS = ["csrf", "username", "password", "next", "resets", "note", "state", "code"]
# The reported ones first, then anything: the bytes of an arbitrary string, and raw bytes that
# are not UTF-8 at all.
NASTY = [b"\xff\xfe", "é".encode(), "\u202e".encode(), b"\xc3", b"%", b"\x80" * 64, b"v2=\xff"]
VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=80).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=80),
)


def header_safe(value: bytes) -> bytes:
    # What a client can put on the wire at all: no CR, LF or NUL in a header.
    return re.sub(rb"[\r\n\x00]", b"", value) or b"\xff"


@pytest.fixture(scope="module", params=BACKENDS)
def app_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    tmp: Path = tmp_path_factory.mktemp("fuzzcreds")
    with database_url(request.param, tmp) as url:
        db = Database.from_url(url)
        migrate(db.engine)
        cfg = Settings.model_validate(
            {
                "database": {"url": url},
                "ingest": {
                    "tokens": [
                        {"source": "monitoring", "token": TOKEN,
                         "scopes": ["ingest", "admin", "events"], "orgs": ["*"]},
                        {"source": "siem", "hmac_secret": HMAC_SECRET},
                    ],
                    "rate_limit": {"rate": 1_000_000, "burst": 1_000_000},
                },
                # Nothing here reaches Slack: refused before, or answered by Bolt itself.
                "slack": {"bot_token": "xoxb-test", "signing_secret": SLACK_SECRET,
                          "api_url": "http://127.0.0.1:9/api/"},
                "dashboard": {"enabled": True, "session_secret": "s" * 40,
                              "users": [{"username": "ada",
                                         "password_hash": hash_password(PASSWORD)}]},
                "paging": {"pagerduty": {"routing_key": "e93facc04764012d7bfb002500d5d1a6",
                                         "webhook_secret": "whsecret-123"}},
                "escalation": {"responders": ["UADMIN1"]},
                "aer": {"enabled": True},
                "scheduler": {"enabled": False},
            }
        )  # fmt: skip
        _runtime, app = build_service(cfg, db)
        with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
            yield c
        db.dispose()


def routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, path parameters filled with ``1``."""
    out = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, Route):
            path = re.sub(r"\{[^}]+\}", "1", route.path)
            out += [(m, path) for m in sorted(route.methods or ()) if m != "HEAD"]
    return out


def sign_in(client: TestClient) -> tuple[str, str]:
    """A real dashboard session; returns its cookie and CSRF token."""
    page = client.get("/dashboard/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    form = {"csrf": token.group(1), "username": "ada", "password": PASSWORD, "next": "/dashboard"}
    resp = client.post("/dashboard/login", data=form)
    assert resp.status_code == 303, resp.text
    session = client.cookies.get(SESSION_COOKIE)
    assert session
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/dashboard/snoozes").text)
    assert csrf
    return session, csrf.group(1)


def send(client: TestClient, method: str, path: str, headers: dict[str, bytes],
         cookies: dict[str, bytes], form: dict[str, bytes]) -> int:  # fmt: skip
    client.cookies.clear()
    raw_headers = dict(headers)
    if cookies:
        raw_headers["Cookie"] = b"; ".join(k.encode() + b"=" + v for k, v in cookies.items())
    body = b"&".join(k.encode() + b"=" + quote_from_bytes(v).encode() for k, v in form.items())
    if form:
        raw_headers["Content-Type"] = b"application/x-www-form-urlencoded"
    resp = client.request(method, path, headers=raw_headers, content=body)
    return resp.status_code


def check(
    client: TestClient, caplog: pytest.LogCaptureFixture, method: str, path: str,
    headers: dict[str, bytes], cookies: dict[str, bytes], form: dict[str, bytes],
) -> None:  # fmt: skip
    caplog.clear()
    status = send(client, method, path, headers, cookies, form)
    what = f"{method} {path} {headers} {cookies} {form}"
    assert status < 500, f"{status} for {what}"
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) <= 1, f"{len(loud)} log lines for {what}: {[r.getMessage() for r in loud]}"
    assert not any(r.exc_info for r in caplog.records), f"a traceback for {what}"


@pytest.mark.parametrize(
    ("method", "path", "where", "name", "value"),
    [
        ("POST", "/slack/events", "header", "X-Slack-Signature", b"\xff\xfe"),
        ("POST", "/dashboard/login", "form", "csrf", "é".encode()),
        ("POST", "/dashboard/logout", "form", "csrf", "é".encode()),
        ("POST", "/dashboard/snoozes/1/revoke", "form", "csrf", "é".encode()),
        ("POST", "/pagerduty/webhook", "header", "X-PagerDuty-Signature", b"v1=\xff\xfe"),
        ("GET", "/api/v1/alerts", "header", "X-Securitybot-Signature", b"v2=\xff\xfe"),
        ("GET", "/dashboard", "cookie", SESSION_COOKIE, "é.é".encode()),
    ],
)
def test_the_reported_non_ascii_credentials_are_a_4xx(
    app_client: TestClient, caplog: pytest.LogCaptureFixture, method: str, path: str,
    where: str, name: str, value: bytes,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO)
    session, _csrf = sign_in(app_client)
    cookies = {SESSION_COOKIE: session.encode(), LOGIN_COOKIE: b"x.y"}
    headers: dict[str, bytes] = {}
    form: dict[str, bytes] = {}
    if path.startswith("/slack"):
        headers["X-Slack-Request-Timestamp"] = str(int(time.time())).encode()
    if path.startswith("/api"):
        headers |= {"X-Securitybot-Source": b"siem",
                    "X-Securitybot-Timestamp": str(int(time.time())).encode()}  # fmt: skip
    {"header": headers, "cookie": cookies, "form": form}[where][name] = value
    caplog.clear()
    status = send(app_client, method, path, headers, cookies, form)
    # Refused by the check it reached (not a 404 or 405 that would test nothing); a bad
    # session cookie is no session: the dashboard sends the browser to sign in.
    assert status in ((303,) if where == "cookie" else (401, 403)), status
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) <= 1 and not any(r.exc_info for r in caplog.records), loud


def test_malformed_headers_cookies_and_form_fields_on_every_route(
    app_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    session, csrf = sign_in(app_client)
    every = routes(app_client)
    assert len(every) > 30  # the API, Slack, the dashboard, paging webhooks, health

    @settings(max_examples=EXAMPLES * 20, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(
        route=st.sampled_from(every),
        headers=st.dictionaries(st.sampled_from(HEADERS), VALUES.map(header_safe), max_size=3),
        cookies=st.dictionaries(st.sampled_from(COOKIES), VALUES.map(header_safe), max_size=2),
        form=st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=3),
        signed_in=st.booleans(),
    )
    def run(route: tuple[str, str], headers: dict[str, bytes], cookies: dict[str, bytes],
            form: dict[str, bytes], signed_in: bool) -> None:  # fmt: skip
        method, path = route
        if signed_in:
            # A valid session and timestamps, so the checks behind them are reached.
            cookies = {SESSION_COOKIE: session.encode()} | cookies
            form = {"csrf": csrf.encode()} | form if "csrf" not in form else form
            now = str(int(time.time())).encode()
            headers = {"X-Slack-Request-Timestamp": now, "X-Securitybot-Timestamp": now,
                       "X-Securitybot-Source": b"siem"} | headers  # fmt: skip
        check(app_client, caplog, method, path, headers, cookies, form)

    run()
