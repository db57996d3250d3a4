"""AER end-to-end fixtures: the fake Slack with two orgs' people, and a bot with AER on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from securitybot.aer.reference_data import EXAMPLE_TOR_PATH
from securitybot.demo import FakeDuo, FakeSlack
from tests.e2e.harness import IKEY, SECURITY_CHANNEL, SKEY, TOKEN, Bot, e2e_settings, running_bot

QUIET, BUSY = "TQUIET", "TBUSY"
AER_CHANNEL = "CAER"
TOR_IP = "198.51.100.7"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The events source (scope "events"), bound to the two orgs the tests use.
EVENTS_TOKEN = "e2e-events-token-0123456789"
EVENTS_AUTH = {"Authorization": f"Bearer {EVENTS_TOKEN}"}
# Reads of the audit log and of every source's alerts need the admin scope (issue #24.6).
ADMIN_TOKEN = "e2e-admin-token-0123456789"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def aer_ingest(orgs: list[str] | None = None) -> dict[str, Any]:
    """The monitoring token (scope ingest) and an events source for ``orgs``."""
    return {
        "tokens": [
            {"source": "e2e", "token": TOKEN},
            {"source": "e2e-admin", "token": ADMIN_TOKEN, "scopes": ["ingest", "admin"]},
            {"source": "e2e-events", "token": EVENTS_TOKEN, "scopes": ["events"],
             "orgs": orgs or [QUIET, BUSY]},
        ]
    }  # fmt: skip


def aer_config(**extra: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "enabled": True,
        "defaults": {"notify": {"primary_owner": True, "security_admins": True}},
        "orgs": {
            QUIET: {"notify": {"channel": AER_CHANNEL}},
            BUSY: {"notify": {"primary_owner": False, "security_admins": False}},
        },
        "contacts": {QUIET: {"primary_owner": "UOWNER", "security_admins": ["UOWNER", "USECADM"]}},
        "notification_window": "1h",
        "tor_list": str(EXAMPLE_TOR_PATH),  # the shipped list is empty
    }
    cfg.update(extra)
    return cfg


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com", real_name="Alice Liddell")
        fake.add_user("UBOB", "bob@example.com", real_name="Bob Builder")
        fake.add_user("UCAROL", "carol@example.com", real_name="Carol")
        fake.add_user("UOWNER", "owner@example.com", real_name="Olga Owner", is_primary_owner=True)
        fake.add_user("USECADM", "secadm@example.com", real_name="Sam Sec")
        fake.add_channel(SECURITY_CHANNEL)
        fake.add_channel(AER_CHANNEL)
        fake.admin_token = "xoxp-admin"
        yield fake


@pytest.fixture
def fd() -> Iterator[FakeDuo]:
    with FakeDuo(ikey=IKEY, skey=SKEY) as fake:
        yield fake


MakeBot = Callable[..., Bot]


@pytest.fixture
def make_bot(db_url: str, fs: FakeSlack, fd: FakeDuo) -> Iterator[MakeBot]:
    """``make_bot(aer_overrides)``; each call starts a server (several = restarts in a row).
    ``sections`` adds to other sections of the configuration (``{"escalation": {...}}``)."""
    with ExitStack() as stack:

        def make(sections: dict[str, Any] | None = None, **aer: Any) -> Bot:
            more = {"ingest": aer_ingest(), **(sections or {})}
            settings = e2e_settings(db_url, fs, fd, aer=aer_config(**aer), **more)
            return stack.enter_context(running_bot(settings, fs, fd))

        yield make


def post_events(bot: Bot, events: list[dict[str, Any]], *, ndjson: bool = False) -> dict[str, Any]:
    if ndjson:
        import json

        body = "\n".join(json.dumps(e) for e in events).encode()
        headers = {**EVENTS_AUTH, "Content-Type": "application/x-ndjson"}
        resp = bot.http.post("/api/v1/events", content=body, headers=headers)
    else:
        resp = bot.http.post("/api/v1/events", json=events, headers=EVENTS_AUTH)
    assert resp.status_code == 202, resp.text
    out: dict[str, Any] = resp.json()
    return out


def get(bot: Bot, path: str, **params: Any) -> dict[str, Any]:
    resp = bot.http.get(path, params=params, headers=ADMIN_AUTH)
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


def history(org: str, per_hour: range, users: int = 20, days: int = 14) -> list[dict[str, Any]]:
    """Two weeks of hourly file_download counts per user, compressed with ``count``."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    for h in range(days * 24, 0, -1):
        ts = (now - timedelta(hours=h)).isoformat()
        for u in range(users):
            n = per_hour.start + (u * 7 + h * 3) % (per_hour.stop - per_hour.start)
            out.append({"org": org, "user": f"UH{u:03d}", "action": "file_download",
                        "ts": ts, "count": n})  # fmt: skip
    return out


def burst(org: str, user: str, n: int, session: str = "SDL") -> list[dict[str, Any]]:
    return [{"org": org, "user": user, "action": "file_download", "session": session}] * n
