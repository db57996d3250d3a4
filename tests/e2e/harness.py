"""A real Securitybot server (uvicorn on a real socket) wired to the Slack and Duo fakes."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from securitybot.config import Settings
from securitybot.demo import FakeDuo, FakeSlack, block_action_body, message_event_body, sign
from securitybot.service import build_service
from securitybot.store.db import Database, migrate

TOKEN = "e2e-ingest-token-0123456789"
SIGNING_SECRET = "e2e-signing-secret"
SECURITY_CHANNEL = "C_SECURITY"
IKEY = "DIXXXXXXXXXXXXXXXXXX"
SKEY = "s" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def e2e_settings(db_url: str, fs: FakeSlack, fd: FakeDuo, **overrides: Any) -> Settings:
    data: dict[str, Any] = {
        "database": {"url": db_url},
        "slack": {
            "bot_token": "xoxb-e2e",
            "signing_secret": SIGNING_SECRET,
            "admin_token": "xoxp-admin",
            "api_url": fs.base_url,
            "security_channel": SECURITY_CHANNEL,
        },
        "duo": {"ikey": IKEY, "skey": SKEY, "api_host": fd.api_host, "ca_certs": fd.ca_path,
                "timeout": 5},
        "ingest": {"tokens": [{"source": "e2e", "token": TOKEN}]},
        "policy": {"ack_timeout": 30, "duo_timeout": 30},
        "scheduler": {"sweep_interval": 0.2},
    }  # fmt: skip
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    return Settings.model_validate(data)


@dataclass
class Bot:
    base: str
    fs: FakeSlack
    fd: FakeDuo
    db: Database
    http: httpx.Client

    def post_alert(self, **fields: Any) -> dict[str, Any]:
        body = {"kind": "sensitive_command", "user": "alice@example.com",
                "title": "flurb -export on accountingserver01",
                "details": {"host": "accountingserver01", "command": "flurb -export"}, **fields}  # fmt: skip
        resp = self.http.post(
            "/api/v1/alerts", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert resp.status_code in (200, 201), resp.text
        out: dict[str, Any] = resp.json()
        return out

    def alert(self, alert_id: int) -> dict[str, Any]:
        resp = self.http.get(
            f"/api/v1/alerts/{alert_id}", headers={"Authorization": f"Bearer {TOKEN}"}
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
                   secret: str = SIGNING_SECRET) -> httpx.Response:  # fmt: skip
        return self.http.post("/slack/events", content=body.encode(),
                              headers=sign(secret, body, timestamp))  # fmt: skip

    def click(self, user: str, action_id: str, alert_id: int) -> httpx.Response:
        a = self.alert(alert_id)
        body = block_action_body(user=user, action_id=action_id, value=str(alert_id),
                                 channel=a.get("dm_channel") or f"D{user}", message_ts="1.0",
                                 response_url=self.fs.response_url())  # fmt: skip
        return self.slack_post(body)

    def say(self, user: str, text: str) -> httpx.Response:
        return self.slack_post(message_event_body(user=user, text=text, channel=f"D{user}"))


@contextmanager
def running_bot(settings: Settings, fs: FakeSlack, fd: FakeDuo) -> Iterator[Bot]:
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
