"""Dashboard sign-in that holds: the failed-attempt limit under concurrent guesses and across
restarts, the client address behind (and not behind) a trusted proxy, and a sign-out that
outlives the process."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.testclient import TestClient

from securitybot import service
from securitybot.dashboard.auth import DashboardAuth
from securitybot.service import build_service
from securitybot.store.db import Database
from tests.dashboard.test_dashboard import PASSWORD, log_in, login_csrf, page_csrf, settings

LIMIT = 5  # failed sign-ins per username and per client address in the window
MALLORY = ("203.0.113.66", 40000)
PROXY = ("10.0.0.2", 40000)


@contextmanager
def dashboard(
    db: Database, db_url: str, client: tuple[str, int] = MALLORY, **cfg: Any
) -> Iterator[TestClient]:
    """A fresh app instance on the same database: what a restart or another replica sees."""
    _rt, app = build_service(settings(db_url, **cfg), db)
    with TestClient(app, follow_redirects=False, client=client) as c:
        yield c


def guess(c: TestClient, username: str, forwarded_for: str | None = None) -> int:
    token = login_csrf(c)
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    resp = c.post(
        "/dashboard/login",
        data={"csrf": token, "username": username, "password": "letmein", "next": "/dashboard"},
        headers=headers,
    )
    return resp.status_code


def test_forty_concurrent_wrong_passwords_check_at_most_the_limit(
    db: Database, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    real = DashboardAuth.check_password

    def spy(self: DashboardAuth, username: str, password: str) -> bool:
        checked.append(username)
        return real(self, username, password)

    monkeypatch.setattr(DashboardAuth, "check_password", spy)
    with dashboard(db, db_url) as c:
        token = login_csrf(c)
        form = {"csrf": token, "username": "ada", "password": "wrong", "next": "/dashboard"}

        # Every answer sets a fresh login CSRF cookie; send the first one explicitly so the
        # shared cookie jar, rewritten by concurrent answers, does not matter.
        cookie = {"Cookie": f"sb_login_csrf={token}"}

        def attempt(_: int) -> int:
            return c.post("/dashboard/login", data=form, headers=cookie).status_code

        with ThreadPoolExecutor(max_workers=40) as pool:
            statuses = list(pool.map(attempt, range(40)))
        assert len(checked) <= LIMIT, f"{len(checked)} passwords checked"
        assert statuses.count(401) == len(checked)
        assert statuses.count(429) == 40 - len(checked)
        # The limit holds for the right password too, until the window passes.
        assert log_in(c).status_code == 429


def test_the_limit_holds_across_restarts(db: Database, db_url: str) -> None:
    with dashboard(db, db_url) as c:
        for _ in range(LIMIT):
            assert guess(c, "ada") == 401
    with dashboard(db, db_url) as c:
        assert log_in(c).status_code == 429


def test_a_right_password_resets_the_count(db: Database, db_url: str) -> None:
    with dashboard(db, db_url) as c:
        for _ in range(LIMIT - 1):
            assert guess(c, "ada") == 401
        assert log_in(c).status_code == 303
        c.cookies.clear()
        for _ in range(LIMIT):
            assert guess(c, "ada") == 401
        assert guess(c, "ada") == 429


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(db: Database, db_url: str) -> None:
    with dashboard(db, db_url) as c:
        # Mallory tries a different username each time, so only the per-address limit applies.
        for n in range(LIMIT):
            assert guess(c, f"user{n}", forwarded_for=f"198.51.100.{n}") == 401
        assert guess(c, "someone-else", forwarded_for="192.0.2.1") == 429


@contextmanager
def served(db_url: str) -> Iterator[httpx.Client]:
    """The app on a real socket, built and configured for uvicorn exactly as `serve` does."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = settings(db_url)
    _runtime, app = service.build_service(cfg)
    server = uvicorn.Server(service.uvicorn_config(app, cfg, host="127.0.0.1", port=port))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield http
    finally:
        server.should_exit = True


def test_served_locally_a_spoofed_forwarded_for_is_ignored(db: Database, db_url: str) -> None:
    # uvicorn believes X-Forwarded-For from 127.0.0.1 by default, so anyone on the host (or
    # behind a local proxy that passes the header on) could pick a fresh address per guess.
    with served(db_url) as http:
        statuses = []
        for n in range(LIMIT + 1):
            page = http.get("/dashboard/login")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert token
            resp = http.post(
                "/dashboard/login",
                data={"csrf": token.group(1), "username": f"user{n}", "password": "x"},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            )
            statuses.append(resp.status_code)
        assert statuses == [401] * LIMIT + [429]


def test_forwarded_for_from_a_trusted_proxy_names_the_client(db: Database, db_url: str) -> None:
    with dashboard(db, db_url, client=PROXY, trusted_proxies=["10.0.0.0/8"]) as c:
        for n in range(LIMIT):
            # The proxy appends the address it saw; what the client sent on the left is ignored.
            assert guess(c, f"user{n}", forwarded_for=f"1.1.1.{n}, 203.0.113.66") == 401
        assert guess(c, "other", forwarded_for="9.9.9.9, 203.0.113.66") == 429
        # Another person behind the same proxy is not locked out by Mallory.
        assert guess(c, "bob", forwarded_for="198.51.100.7") == 401
        # Through two trusted hops, the first untrusted address from the right is the client.
        assert guess(c, "x", forwarded_for="203.0.113.66, 10.0.0.9") == 429


def test_sign_out_holds_after_a_restart(db: Database, db_url: str) -> None:
    with dashboard(db, db_url) as c:
        assert log_in(c).status_code == 303
        old = c.cookies.get("sb_dashboard")
        assert old and c.get("/dashboard").status_code == 200
        resp = c.post("/dashboard/logout", data={"csrf": page_csrf(c, "/dashboard")})
        assert resp.status_code == 303
    with dashboard(db, db_url) as c:
        c.cookies.set("sb_dashboard", old)
        assert c.get("/dashboard").status_code == 303


def test_a_session_survives_a_restart_until_signed_out(db: Database, db_url: str) -> None:
    with dashboard(db, db_url) as c:
        assert log_in(c).status_code == 303
        cookie = c.cookies.get("sb_dashboard")
    with dashboard(db, db_url) as c:
        c.cookies.set("sb_dashboard", cookie)
        assert c.get("/dashboard").status_code == 200
        assert PASSWORD not in c.get("/dashboard").text
