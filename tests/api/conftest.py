from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from securitybot.config import Settings
from securitybot.service import build_service
from securitybot.store.db import Database

TOKEN = "monitoring-token-0123456789"
OTHER_TOKEN = "other-source-token-0123456789"
HMAC_SECRET = "siem-hmac-secret-0123456789"


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


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:
    _runtime, app = build_service(api_settings(db_url), db)
    with TestClient(app) as c:
        yield c


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
