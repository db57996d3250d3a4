"""A real Securitybot server (uvicorn on a real socket) wired to the fakes of Slack and of the
second factor (Duo or Okta Verify)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import uvicorn
from sqlalchemy import select

from securitybot.config import Settings
from securitybot.demo import (
    Call,
    FakeDuo,
    FakeOkta,
    FakeSlack,
    block_action_body,
    message_event_body,
    sign,
)
from securitybot.demo.slack_signing import retry_headers
from securitybot.service import build_service
from securitybot.store.db import Database, migrate
from securitybot.store.models import Alert, AuditLog

T = TypeVar("T")

TOKEN = "e2e-ingest-token-0123456789"
# The harness's own reader: an ingest token reads only its own source's alerts (issue #24.6), and
# the harness looks at alerts every source made (Slack's `/securitybot test`, adapters, AER).
READ_TOKEN = "e2e-reader-token-0123456789"
READER = {"source": "e2e-reader", "token": READ_TOKEN, "scopes": ["ingest", "admin"]}
SIGNING_SECRET = "e2e-signing-secret"
SECURITY_CHANNEL = "CSECURITY"
# The fake Duo is started with these keys; its config() hands the same ones to the bot.
IKEY = "DIXXXXXXXXXXXXXXXXXX"
SKEY = "s" * 40
OKTA_TOKEN = "00e2e-okta-api-token-0123456789abcdef"
# Both fakes take the same scenario controls (enroll, wait_for_push, answer_push, ...).
FakeVerifier = FakeDuo | FakeOkta
VERIFIERS = ["duo", "okta"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def e2e_config(db_url: str, fs: FakeSlack, fd: FakeVerifier, **overrides: Any) -> dict[str, Any]:
    """The e2e configuration as plain data (secrets as strings), e.g. to write a YAML file."""
    data: dict[str, Any] = {
        # PostgreSQL takes 100 connections in all; four test workers running two-replica
        # tests with the default pool (40 + 10) could take them all ("too many clients").
        "database": {"url": db_url, "pool_size": 10},
        "slack": {
            "bot_token": "xoxb-e2e",
            "signing_secret": SIGNING_SECRET,
            "admin_token": "xoxp-admin",
            "api_url": fs.base_url,
            "security_channel": SECURITY_CHANNEL,
        },
        **fd.config(),
        "ingest": {"tokens": [{"source": "e2e", "token": TOKEN}]},
        "policy": {"ack_timeout": 30, "duo_timeout": 30},
        "scheduler": {"sweep_interval": 0.2},
    }  # fmt: skip
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    tokens = data["ingest"].setdefault("tokens", [])
    if READER not in tokens:
        data["ingest"]["tokens"] = [*tokens, READER]
    return data


def e2e_settings(db_url: str, fs: FakeSlack, fd: FakeVerifier, **overrides: Any) -> Settings:
    return Settings.model_validate(e2e_config(db_url, fs, fd, **overrides))


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll until `predicate()` is truthy and return its value; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def ok_calls(fs: FakeSlack, method: str, channel: str | None = None) -> list[Call]:
    """Calls to `method` that Slack accepted (HTTP 200, ok: true), optionally in one channel."""
    return [
        c
        for c in fs.calls_to(method)
        if c.status == 200
        and c.response.get("ok")
        and (channel is None or c.response.get("channel", c.params.get("channel")) == channel)
    ]


@dataclass
class Bot:
    base: str
    fs: FakeSlack
    fd: FakeVerifier
    db: Database
    http: httpx.Client

    @property
    def provider(self) -> str:
        """How the bot names the second factor in posts and DMs."""
        return "Okta Verify" if isinstance(self.fd, FakeOkta) else "Duo"

    def push_user(self, email: str) -> str:
        """The username the second factor knows `email` by (Duo: local part; Okta: email)."""
        return email if isinstance(self.fd, FakeOkta) else email.split("@")[0]

    def post_alert(self, **fields: Any) -> dict[str, Any]:
        body = {
            "kind": "sensitive_command",
            "user": "alice@example.com",
            "title": "flurb -export on accountingserver01",
            "details": {"host": "accountingserver01", "command": "flurb -export"},
            **fields,
        }
        resp = self.http.post(
            "/api/v1/alerts", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert resp.status_code in (200, 201), resp.text
        out: dict[str, Any] = resp.json()
        return out

    def alert(self, alert_id: int) -> dict[str, Any]:
        resp = self.http.get(
            f"/api/v1/alerts/{alert_id}", headers={"Authorization": f"Bearer {READ_TOKEN}"}
        )
        assert resp.status_code == 200, resp.text
        out: dict[str, Any] = resp.json()
        return out

    def wait_status(self, alert_id: int, *statuses: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            a = self.alert(alert_id)
            if a["status"] in statuses:
                return a
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"alert {alert_id} stuck in {a['status']}, wanted {statuses}: {a}"
                )
            time.sleep(0.05)

    def slack_post(self, body: str, *, timestamp: int | None = None,
                   secret: str = SIGNING_SECRET, retry: int = 0) -> httpx.Response:  # fmt: skip
        """POST as Slack does; ``retry=n`` re-sends like Slack's n-th retry (fresh signature)."""
        headers = sign(secret, body, timestamp) | (retry_headers(retry) if retry else {})
        return self.http.post("/slack/events", content=body.encode(), headers=headers)

    def click(self, user: str, action_id: str, alert_id: int) -> httpx.Response:
        a = self.alert(alert_id)
        body = block_action_body(user=user, action_id=action_id, value=str(alert_id),
                                 channel=a.get("dm_channel") or f"D{user}", message_ts="1.0",
                                 response_url=self.fs.response_url())  # fmt: skip
        return self.slack_post(body)

    def say(self, user: str, text: str) -> httpx.Response:
        return self.slack_post(message_event_body(user=user, text=text, channel=f"D{user}"))

    # -- what the bot did, as seen by the fakes and the database ------------------------------
    def dms(self, user: str) -> list[Call]:
        """Alert DMs (with buttons) Slack accepted for `user`."""
        return [
            c for c in ok_calls(self.fs, "chat.postMessage", f"D{user}") if c.params.get("blocks")
        ]

    def replies(self, user: str) -> list[Call]:
        """Plain-text replies (no blocks) the bot posted in `user`'s DM."""
        return [
            c
            for c in ok_calls(self.fs, "chat.postMessage", f"D{user}")
            if not c.params.get("blocks")
        ]

    def wait_reply(self, user: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        def enough() -> list[Call]:
            replies = self.replies(user)
            return replies if len(replies) >= count else []

        return wait_until(enough, timeout, f"{count} text replies to {user}")

    def security_posts(self) -> list[Call]:
        return ok_calls(self.fs, "chat.postMessage", SECURITY_CHANNEL)

    def wait_security_post(self, timeout: float = 10.0) -> Call:
        return wait_until(lambda: self.security_posts(), timeout, "a security-channel post")[0]

    def audit(self, alert_id: int, action: str | None = None) -> list[AuditLog]:
        with self.db.read() as session:
            q = select(AuditLog).where(AuditLog.alert_id == alert_id).order_by(AuditLog.id)
            if action is not None:
                q = q.where(AuditLog.action == action)
            return list(session.scalars(q))

    def row(self, alert_id: int) -> Alert:
        """The stored alert, including columns the API does not expose (duo_txid, dm_ts...)."""
        with self.db.read() as session:
            alert = session.get(Alert, alert_id)
            assert alert is not None
            session.expunge(alert)
            return alert


@contextmanager
def running_bot(settings: Settings, fs: FakeSlack, fd: FakeVerifier) -> Iterator[Bot]:
    db = Database.from_url(settings.database.url)
    migrate(db.engine)
    _runtime, app = build_service(settings, db)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as http:
        try:
            yield Bot(base, fs, fd, db, http)
        finally:
            server.should_exit = True
            thread.join(timeout=15)
            db.dispose()
