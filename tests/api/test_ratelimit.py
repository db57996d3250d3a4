"""Per-source token buckets on every ingest POST: a flooding tool gets 429s, others carry on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from securitybot.config import IngestConfig, Settings
from securitybot.ingest.ratelimit import RateLimiter
from securitybot.service import build_service
from securitybot.store.db import Database
from tests.api.conftest import OTHER_TOKEN, TOKEN, auth
from tests.api.test_ingest import FLURB, counts

GRAFANA = {
    "orgId": 1,
    "alerts": [{"status": "firing", "labels": {"user": "bob@example.com", "alertname": "x"},
                "annotations": {}, "startsAt": "2024-05-14T09:10:00Z", "fingerprint": "f1"}],
}  # fmt: skip


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:
    settings = Settings.model_validate(
        {
            "database": {"url": db_url},
            "ingest": {
                "tokens": [
                    {"source": "monitoring", "token": TOKEN, "scopes": ["ingest", "admin"]},
                    {"source": "other", "token": OTHER_TOKEN},
                ],
                # A slow refill makes the test independent of how fast the machine is.
                "rate_limit": {"rate": 0.01, "burst": 100},
                "rate_limits": {"monitoring": {"rate": 0.01, "burst": 3}},
            },
            "scheduler": {"enabled": False},
        }
    )
    _runtime, app = build_service(settings, db)
    with TestClient(app) as c:
        yield c


def test_a_flooding_source_gets_429_while_another_source_is_still_accepted(
    client: TestClient, db: Database
) -> None:
    codes = [
        client.post(
            "/api/v1/alerts", json={**FLURB, "dedup_key": f"a-{i}"}, headers=auth()
        ).status_code
        for i in range(10)
    ]
    assert codes[:3] == [201, 201, 201]
    assert set(codes[3:]) == {429}
    other = client.post(
        "/api/v1/alerts", json={**FLURB, "dedup_key": "b"}, headers=auth(OTHER_TOKEN)
    )
    assert other.status_code == 201
    assert counts(db)[0] == 4


def test_a_429_says_when_to_retry_and_writes_nothing(client: TestClient, db: Database) -> None:
    for i in range(3):
        client.post("/api/v1/alerts", json={**FLURB, "dedup_key": f"a-{i}"}, headers=auth())
    before = counts(db)
    resp = client.post("/api/v1/alerts", json={**FLURB, "dedup_key": "late"}, headers=auth())
    assert resp.status_code == 429
    assert resp.json()["error"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) >= 1
    assert counts(db) == before


def test_adapters_and_exemptions_share_the_source_bucket(client: TestClient) -> None:
    for i in range(3):
        client.post("/api/v1/alerts", json={**FLURB, "dedup_key": f"a-{i}"}, headers=auth())
    assert client.post("/api/v1/alerts/grafana", json=GRAFANA, headers=auth()).status_code == 429
    exemption = {"user": "bob@example.com", "reason": "r", "requested_by": "UADMIN1"}
    assert client.post("/api/v1/exemptions", json=exemption, headers=auth()).status_code == 429
    assert (
        client.post("/api/v1/alerts/grafana", json=GRAFANA, headers=auth(OTHER_TOKEN)).status_code
        == 201
    )


def test_reads_are_not_rate_limited(client: TestClient) -> None:
    for i in range(3):
        client.post("/api/v1/alerts", json={**FLURB, "dedup_key": f"a-{i}"}, headers=auth())
    assert all(client.get("/api/v1/alerts", headers=auth()).status_code == 200 for _ in range(5))


def test_unauthenticated_requests_do_not_drain_a_sources_bucket(client: TestClient) -> None:
    for _ in range(10):
        assert (
            client.post(
                "/api/v1/alerts", json=FLURB, headers=auth("wrong-token-0123456789")
            ).status_code
            == 401
        )
    assert client.post("/api/v1/alerts", json=FLURB, headers=auth()).status_code == 201


def test_the_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    cfg = IngestConfig.model_validate(
        {
            "tokens": [{"source": "s", "token": "s-token-0123456789"}],
            "rate_limit": {"rate": 2, "burst": 2},
        }
    )
    limiter = RateLimiter(cfg, clock=lambda: now[0])
    assert [limiter.take("s") for _ in range(2)] == [0.0, 0.0]
    assert limiter.take("s") == pytest.approx(0.5)
    now[0] = 0.5
    assert limiter.take("s") == 0.0
    now[0] = 100.0
    assert [limiter.take("s") for _ in range(3)][-1] > 0  # never more than the burst


def test_defaults_are_50_per_second_with_a_burst_of_200() -> None:
    limit = IngestConfig().rate_limit
    assert (limit.rate, limit.burst) == (50.0, 200)
