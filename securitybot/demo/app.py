"""``securitybot demo``: the real service wired to local fakes of Slack and Duo, plus a console.

Nothing here is used by ``serve``. The fakes speak the real wire protocols, so every click in
the console travels the production path: signed request → Bolt → state machine → outbox →
Slack/Duo API calls → scheduler deadlines.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml

from securitybot.config import AlertsConfig, Settings
from securitybot.dashboard.auth import hash_password
from securitybot.demo.cast import (
    DASHBOARD_USER,
    GRID_ORG,
    GRID_WORKSPACES,
    IKEY,
    IN_SECOND_WORKSPACE,
    INGEST_TOKEN,
    PAGER_OWNER,
    PEOPLE,
    SCENARIOS,
    SECURITY_CHANNEL,
    SEED_ALERTS,
    Person,
    pagerduty_id,
)
from securitybot.demo.console import Console
from securitybot.demo.fake_duo import FakeDuo
from securitybot.demo.fake_okta import FakeOkta
from securitybot.demo.fake_pagerduty import FakePagerDuty
from securitybot.demo.fake_slack import FakeSlack
from securitybot.demo.scenario import play_attack
from securitybot.demo.slack_signing import sign
from securitybot.service import build_service
from securitybot.store.db import Database, migrate

logger = logging.getLogger(__name__)

__all__ = [
    "DASHBOARD_USER",
    "GRID_ORG",
    "GRID_WORKSPACES",
    "IKEY",
    "INGEST_TOKEN",
    "IN_SECOND_WORKSPACE",
    "PAGER_OWNER",
    "PEOPLE",
    "SCENARIOS",
    "SECURITY_CHANNEL",
    "SEED_ALERTS",
    "Demo",
    "Person",
    "free_port",
    "pagerduty_id",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Demo:
    port: int = 8000
    db_path: str | None = None
    scenario: str | None = None
    ack_timeout: float = 60.0
    duo_timeout: float = 45.0
    sweep_interval: float = 1.0
    seed: bool = True
    fs: FakeSlack = field(default_factory=FakeSlack)
    # The on-call's pager: escalations page through PagerDuty's Events API (issue 29).
    pd: FakePagerDuty = field(default_factory=FakePagerDuty)
    # The second factor: "duo" or "okta" (securitybot demo --verifier); fd is its fake.
    verifier: str = "duo"
    # securitybot demo --grid: an Enterprise Grid org, two workspaces, one org-wide install.
    grid: bool = False
    fd: FakeDuo | FakeOkta | None = None  # set in __post_init__ by verifier
    signing_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    dashboard_password: str = field(default_factory=lambda: secrets.token_urlsafe(9))
    narration: list[dict[str, Any]] = field(default_factory=list)
    push_answers: dict[str, str] = field(default_factory=dict)
    # What people typed in their DMs: Slack shows it, but the fake keeps only the bot's messages.
    typed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    scenario_running: bool = False
    _tmp: Path | None = None
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _db: Database | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.verifier not in ("duo", "okta"):
            raise ValueError(f"unknown verifier {self.verifier!r} (duo or okta)")
        if self.grid:
            self.fs = FakeSlack(team_id=GRID_WORKSPACES[0], enterprise_id=GRID_ORG,
                                org_install=True, workspaces=list(GRID_WORKSPACES))  # fmt: skip
        if self.fd is None:
            self.fd = (
                FakeOkta(token="00" + secrets.token_urlsafe(30))
                if self.verifier == "okta"
                else FakeDuo(ikey=IKEY, skey=secrets.token_hex(20))
            )

    @property
    def fake(self) -> FakeDuo | FakeOkta:
        assert self.fd is not None
        return self.fd

    def push_user(self, email: str) -> str:
        """Who the second factor knows `email` as: Duo the local part, Okta the email."""
        return email if isinstance(self.fd, FakeOkta) else email.split("@")[0]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def enterprise(self) -> str | None:
        """The Grid org whose org-wide install the console's requests come to, if any."""
        return GRID_ORG if self.grid else None

    def team_of(self, user_id: str) -> str:
        """The workspace a person's clicks and messages come from."""
        if self.grid and user_id in IN_SECOND_WORKSPACE:
            return GRID_WORKSPACES[1]
        return self.fs.team_id

    def person(self, user_id: str) -> Person | None:
        return next((p for p in PEOPLE if p.id == user_id), None)

    def say(self, text: str) -> None:
        """A line in the console's story panel (and the terminal log)."""
        logger.info("demo: %s", text)
        with self._lock:
            self.narration.append({"at": time.time(), "text": text})

    # ---- assembling ----------------------------------------------------------------------------

    def settings(self) -> Settings:
        responders = [p.id for p in PEOPLE if p.role == "responder"]
        return Settings.model_validate(
            {
                "database": {"url": f"sqlite:///{self.database_path}"},
                "server": {"host": "127.0.0.1", "port": self.port},
                "slack": {
                    "bot_token": "xoxb-demo",
                    "signing_secret": self.signing_secret,
                    "admin_token": "xoxp-demo-admin",
                    "api_url": self.fs.base_url,
                    "security_channel": SECURITY_CHANNEL,
                    "user_cache_ttl": 60,
                },
                **self.fake.config(),
                "ingest": {"tokens": [{"source": "demo", "token": INGEST_TOKEN}]},
                "alerts": {"dir": str(self._alerts_dir())},
                "policy": {"ack_timeout": self.ack_timeout, "duo_timeout": self.duo_timeout},
                "escalation": {"responders": responders, "group_window": 30},
                "paging": {**self.pd.config(), "dashboard_url": self.base_url},
                "scheduler": {"sweep_interval": self.sweep_interval},
                "logging": {"level": "WARNING"},
                "dashboard": {
                    "enabled": True,
                    "session_secret": secrets.token_urlsafe(32),
                    "secure_cookies": "false",
                    "users": [
                        {
                            "username": DASHBOARD_USER,
                            "password_hash": hash_password(self.dashboard_password),
                        }
                    ],
                },
            }
        )

    @property
    def tmp(self) -> Path:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="securitybot-demo-"))
        return self._tmp

    @property
    def database_path(self) -> Path:
        return Path(self.db_path) if self.db_path else self.tmp / "demo.db"

    def _alerts_dir(self) -> Path:
        """The shipped kinds and rules, with each kind's own ack_timeout (minutes to hours)
        dropped so the demo's short policy.ack_timeout applies to every alert."""
        target = self.tmp / "alerts"
        if not target.exists():
            shutil.copytree(AlertsConfig().dir, target)
            for path in (target / "kinds").glob("*.yaml"):
                kind = yaml.safe_load(path.read_text()) or {}
                kind.pop("ack_timeout", None)
                path.write_text(yaml.safe_dump(kind, sort_keys=False))
        return target

    def _start_fakes(self) -> None:
        self.fs.start()
        self.fs.admin_token = "xoxp-demo-admin"
        self.fs.add_user("UBOT", "securitybot@example.com", real_name="Securitybot", is_bot=True)
        for p in PEOPLE:
            self.fs.add_user(p.id, p.email, real_name=p.name, first_name=p.first_name,
                             teams=[self.team_of(p.id)])  # fmt: skip
        self.fs.add_channel(SECURITY_CHANNEL)
        # Pushes expire with the bot's deadline, so the phone never offers a push nobody awaits.
        self.fake.push_timeout = self.duo_timeout
        self.fake.start()
        for p in PEOPLE:
            self.fake.enroll(self.push_user(p.email))
        self.pd.start()
        for p in PEOPLE:
            if p.role == "responder":
                self.pd.add_user(pagerduty_id(p), p.name, p.email)
        self.pd.webhook_url = f"{self.base_url}/pagerduty/webhook"

    def build(self) -> None:
        """Start the fakes, migrate, and assemble the real service with the console mounted."""
        self._start_fakes()
        settings = self.settings()
        self._db = Database.from_url(settings.database.url)
        migrate(self._db.engine)
        self.console = Console(self)
        _runtime, app = build_service(settings, self._db, extra_routes=self.console.routes())
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=3,
        )
        self._server = uvicorn.Server(config)

    # ---- running -------------------------------------------------------------------------------

    def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve in this thread until interrupted (the CLI)."""
        self.build()
        assert self._server is not None
        threading.Thread(target=self._after_start, args=(on_ready,), daemon=True).start()
        try:
            self._server.run()
        finally:
            self.close()

    def start(self) -> Demo:
        """Serve in a background thread (tests); returns once the server accepts requests."""
        self.build()
        server = self._server
        assert server is not None
        self._thread = threading.Thread(target=server.run, name="demo-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.close()
                raise RuntimeError("the demo server did not start")
            time.sleep(0.02)
        self._after_start(None)
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self.fs.stop()
        self.fake.stop()
        self.pd.stop()
        if self._db is not None:
            self._db.dispose()
            self._db = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> Demo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _after_start(self, on_ready: Callable[[], None] | None) -> None:
        server = self._server
        while server is not None and not server.started and not server.should_exit:
            time.sleep(0.05)
        if self.seed:
            for body in SEED_ALERTS:
                if self.scenario == "attack" and body["user"] == "alice@example.com":
                    continue  # Alice's DM belongs to the attack story
                self.post_alert(body)
            self.say("Seeded example alerts for Alice, Bob and Carol through POST /api/v1/alerts.")
        if on_ready is not None:
            on_ready()
        if self.scenario == "attack":
            self.start_attack()

    def start_attack(self) -> None:
        with self._lock:
            if self.scenario_running:
                return
            self.scenario_running = True
        threading.Thread(target=play_attack, args=(self,), name="demo-attack", daemon=True).start()

    # ---- acting like the outside world ---------------------------------------------------------

    def post_alert(self, body: dict[str, Any]) -> dict[str, Any]:
        resp = httpx.post(
            f"{self.base_url}/api/v1/alerts",
            json=body,
            timeout=10,
            headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
        )
        resp.raise_for_status()
        out: dict[str, Any] = resp.json()
        return out

    def get_alert(self, alert_id: int) -> dict[str, Any]:
        resp = httpx.get(
            f"{self.base_url}/api/v1/alerts/{alert_id}",
            timeout=10,
            headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
        )
        resp.raise_for_status()
        out: dict[str, Any] = resp.json()
        return out

    def record_typed(self, person: Person, text: str) -> str:
        ts = f"{time.time():.6f}"
        with self._lock:
            self.typed.setdefault(person.dm, []).append(
                {"type": "message", "user": person.id, "text": text, "ts": ts}
            )
        return ts

    def dm_history(self, person: Person) -> list[dict[str, Any]]:
        with self._lock:
            typed = list(self.typed.get(person.dm, []))
        return sorted(self.fs.messages(person.dm) + typed, key=lambda m: float(m["ts"]))

    def slack_post(self, body: str) -> httpx.Response:
        """POST a Slack-signed request to the bot's real /slack/events endpoint."""
        return httpx.post(
            f"{self.base_url}/slack/events",
            content=body.encode(),
            timeout=10,
            headers=sign(self.signing_secret, body),
        )
