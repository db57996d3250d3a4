from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from securitybot.config import Settings
from securitybot.service import build_service
from securitybot.store.db import Database

TOKEN = "monitoring-token-0123456789"
OTHER_TOKEN = "other-source-token-0123456789"
HMAC_SECRET = "siem-hmac-secret-0123456789"
ADMIN_TOKEN = "team-admin-token-0123456789"
LEAD = "U0SECLEAD"


def api_settings(db_url: str) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": db_url},
            "ingest": {
                "tokens": [
                    {"source": "monitoring", "token": TOKEN},
                    {"source": "other", "token": OTHER_TOKEN},
                    {"source": "siem", "hmac_secret": HMAC_SECRET},
                ]
            },
            "scheduler": {"enabled": False},
        }
    )


def team_settings(db_url: str, **escalation: Any) -> Settings:
    """The team API's setup: an ingest token (scopes default to [ingest]), an admin one, and
    LEAD as the one responder; `escalation` adds to that section."""
    return Settings.model_validate(
        {
            "database": {"url": db_url},
            "ingest": {
                "tokens": [
                    {"source": "monitoring", "token": TOKEN},
                    {"source": "secops", "token": ADMIN_TOKEN, "scopes": ["admin"]},
                ]
            },
            "escalation": {"responders": [LEAD], **escalation},
            "scheduler": {"enabled": False},
        }
    )


def serve(settings: Settings, db: Database) -> Iterator[TestClient]:
    """The service built from `settings` on `db`, for a fixture to ``yield from``."""
    _runtime, app = build_service(settings, db)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:
    yield from serve(api_settings(db_url), db)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
