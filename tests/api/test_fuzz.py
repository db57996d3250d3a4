"""Property-based fuzzing of every documented endpoint (schemathesis, from openapi.yaml).

Two properties, for valid-looking and deliberately invalid requests alike: the server never
answers 5xx, and a request it refuses (4xx) writes nothing (alerts, audit log and outbox rows
are counted before and after). Runs through one TestClient so the app's background ingest task
lives on one event loop, as it does in production.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from starlette.testclient import TestClient

from securitybot.api.openapi import load_spec
from securitybot.config import Settings
from securitybot.service import build_service
from securitybot.store.db import Database, migrate
from tests.api.conftest import OTHER_TOKEN, TOKEN
from tests.api.test_ingest import counts
from tests.conftest import BACKENDS
from tests.dbs import database_url

# Small enough for CI (< 60 s for both backends); raise locally with SECURITYBOT_FUZZ_EXAMPLES.
EXAMPLES = int(os.environ.get("SECURITYBOT_FUZZ_EXAMPLES", "12"))


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_ctx: Any, value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else str(value).encode()


SCHEMA = schemathesis.openapi.from_dict(load_spec())
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations()}


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Database]]:
    # One app per backend for the whole module: a fresh database per test would cost more than
    # the fuzzing itself, and the properties compare row counts per request anyway.
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with database_url(request.param, tmp) as url:
        db = Database.from_url(url)
        migrate(db.engine)
        cfg = Settings.model_validate(
            {
                "database": {"url": url},
                "ingest": {
                    "tokens": [
                        # admin and events too, so fuzzing reaches every endpoint.
                        {
                            "source": "monitoring",
                            "token": TOKEN,
                            "scopes": ["ingest", "admin", "events"],
                            "orgs": ["*"],
                        },
                        {"source": "other", "token": OTHER_TOKEN},
                    ],
                    # Fuzzing is a flood from one source; 429s would hide everything else.
                    "rate_limit": {"rate": 1_000_000, "burst": 1_000_000},
                },
                "escalation": {"responders": ["UADMIN1"]},
                "aer": {"enabled": True},
                "scheduler": {"enabled": False},
            }
        )
        _runtime, app = build_service(cfg, db)
        with TestClient(app, raise_server_exceptions=False) as c:
            yield c, db
        db.dispose()


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_no_server_error_and_no_write_when_refused(
    fuzz_app: tuple[TestClient, Database], label: str, mode: schemathesis.GenerationMode
) -> None:
    client, db = fuzz_app
    operation = OPERATIONS[label]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), authed=st.booleans())
    def check(case: schemathesis.Case, authed: bool) -> None:
        # Mostly real credentials, so the fuzzing reaches validation and storage, not just 401.
        headers = {"Authorization": f"Bearer {TOKEN}"} if authed else None
        kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
        kwargs.pop("cookies", None)
        if isinstance(kwargs.get("data"), bytes | str):
            kwargs["content"] = kwargs.pop("data")
        before = counts(db)
        resp = client.request(**kwargs)
        assert resp.status_code < 500, f"{label}: {resp.status_code} {resp.text[:500]}"
        if 400 <= resp.status_code < 500:
            assert counts(db) == before, f"{label}: {resp.status_code} but rows were written"

    try:
        check()
    except Unsatisfiable:
        # No parameters, body or credentials to get wrong (e.g. GET /healthz, negative mode).
        pytest.skip(f"{label} has nothing that can be made invalid")


ID_PATHS = [
    ("GET", "/api/v1/alerts/{}"),
    ("DELETE", "/api/v1/exemptions/{}?requested_by=UADMIN1"),
    ("DELETE", "/api/v1/snoozes/{}?requested_by=UADMIN1"),
    ("GET", "/api/v1/alerts?limit={}"),
    ("GET", "/api/v1/audit?limit={}"),
    ("GET", "/api/v1/anomalies?limit={}"),
]
# What generic string fuzzing rarely produces: numbers past BIGINT, non-ASCII digits ("²"),
# and digit strings too long for int().
ODD_NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["²", "٣", "0" * 30, "9" * 5000, "-0", "1e3", " 1"]),
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=25),
)


@pytest.mark.parametrize(("method", "template"), ID_PATHS, ids=[f"{m} {p}" for m, p in ID_PATHS])
def test_ids_and_limits_of_any_size_or_script_are_refused_not_crashed(
    fuzz_app: tuple[TestClient, Database], method: str, template: str
) -> None:
    client, db = fuzz_app

    @settings(max_examples=EXAMPLES * 3, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(number=ODD_NUMBERS)
    def check(number: str) -> None:
        before = counts(db)
        resp = client.request(
            method, template.format(quote(number)), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert resp.status_code < 500, f"{method} {template} {number!r}: {resp.text[:300]}"
        if resp.status_code >= 400:
            assert counts(db) == before

    check()
