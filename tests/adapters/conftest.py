from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import func, select
from starlette.testclient import TestClient

from securitybot import service
from securitybot.config import Settings
from securitybot.service import build_service
from securitybot.store.db import Database
from securitybot.store.models import Alert, AuditLog, Outbox

SAMPLES = Path(__file__).parent / "samples"
TOKEN = "monitoring-token-0123456789"
SPLUNK_TOKEN = "splunk-query-token-0123456789"
FALCO_TOKEN = "falco-k8s-token-0123456789"
ELASTALERT_TOKEN = "elastalert-okta-token-0123456789"


def sample(name: str) -> Any:
    """A payload from ``samples/``; a ``_source`` key (where it was copied from) is dropped."""
    data = json.loads((SAMPLES / f"{name}.json").read_text())
    if isinstance(data, dict):
        data.pop("_source", None)
    return data


def adapter_settings(db_url: str, **overrides: Any) -> Settings:
    return Settings.model_validate(
        {
            **overrides,
            "database": {"url": db_url},
            "ingest": {
                "tokens": [
                    {"source": "monitoring", "token": TOKEN},
                    {"source": "splunk-prod", "token": SPLUNK_TOKEN},
                    {"source": "falco-k8s", "token": FALCO_TOKEN},
                    {"source": "elastalert-okta", "token": ELASTALERT_TOKEN},
                ]
            },
            "adapters": {
                # Wazuh and Falco know login names, not emails: the operator maps them.
                "wazuh": {"user": "{{ data.dstuser ~ '@example.com' if data.dstuser }}"},
                # Okta's documents name the person by login; the email is the actor's id.
                "elastalert": {
                    "sources": {
                        "elastalert-okta": {"user": "{{ get(doc, 'okta.actor.alternate_id') }}"}
                    }
                },
                "falco": {
                    "sources": {
                        "falco-k8s": {
                            "user": "{{ output_fields['user.loginname'] ~ '@example.com' }}"
                        }
                    }
                },
            },
            "scheduler": {"enabled": False},
        }
    )


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:
    _runtime, app = build_service(adapter_settings(db_url), db)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def served(db: Database, db_url: str) -> Iterator[str]:
    """The service on a real socket (as `serve` runs it), for tools that post over HTTP."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = adapter_settings(db_url)
    _runtime, app = build_service(cfg, db)
    server = uvicorn.Server(service.uvicorn_config(app, cfg, host="127.0.0.1", port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def counts(db: Database) -> tuple[int, int, int]:
    with db.read() as s:
        return (
            s.scalar(select(func.count()).select_from(Alert)) or 0,
            s.scalar(select(func.count()).select_from(AuditLog)) or 0,
            s.scalar(select(func.count()).select_from(Outbox)) or 0,
        )
