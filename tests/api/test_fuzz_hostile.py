"""Hostile-JSON fuzzing of every JSON body and time parameter (issue #12, item 7).

Schemathesis (``test_fuzz.py``) generates what the OpenAPI schema describes; attackers send
what it does not. Here a valid payload per endpoint has one value, anywhere in it, replaced
by raw JSON text no encoder would produce: lone surrogates, NaN/Infinity, numbers of
thousands of digits or past float range, nesting thousands deep, and times at the edges of
what ``datetime`` holds. Properties: never a 5xx; a 4xx writes nothing; the alert listing
still answers afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from securitybot.store.db import Database
from tests.api.conftest import TOKEN
from tests.api.test_fuzz import EXAMPLES, fuzz_app  # noqa: F401 (fixture)
from tests.api.test_ingest import FLURB, counts

SAMPLES = Path(__file__).parent.parent / "adapters" / "samples"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EVENT = {"org": "T1", "user": "UBOB", "action": "file_download", "ts": "2024-05-01T12:00:00Z"}

# Raw JSON text for one value. json.dumps escapes surrogates as \\udxxx and writes NaN.
SURROGATE_TEXT = st.text(
    alphabet=st.characters(categories=["Cs", "Lu", "Nd", "Po", "Zs"]), max_size=12
).map(json.dumps)
EDGE_DATES = st.one_of(
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00",
                     "0001-01-01", "9999-12-31T23:59:59.999999", "1969-12-31T23:59:59Z"]),
    st.builds(lambda d, tz: d.isoformat() + tz,
              st.datetimes(), st.sampled_from(["", "Z", "+14:00", "-14:00", "+23:59"])),
).map(json.dumps)  # fmt: skip
HUGE_NUMBERS = st.one_of(
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1e-999"]),
    st.integers(min_value=1, max_value=5000).map(lambda n: "9" * n),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(json.dumps),
)
DEEP = st.integers(min_value=1, max_value=30_000).map(lambda n: "[" * n + "]" * n)
HOSTILE = st.one_of(SURROGATE_TEXT, EDGE_DATES, HUGE_NUMBERS, DEEP)


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in ``value`` a hostile value can take, the root excepted."""
    out = [here] if here else []
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*here, key))
        out.append((*here, "extra\udfff"))  # a new key, itself with a lone surrogate
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*here, index))
    return out


def render(value: Any, path: tuple[Any, ...], raw: str) -> str:
    """``value`` as JSON text with the value at ``path`` replaced by the raw text ``raw``."""
    if not path:
        return raw
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        keys = list(value) + ([head] if head not in value else [])
        parts = [f"{json.dumps(k)}:" + (render(value.get(k), rest, raw) if k == head
                 else json.dumps(value[k])) for k in keys]  # fmt: skip
        return "{" + ",".join(parts) + "}"
    if isinstance(value, list):
        items = [render(v, rest, raw) if i == head else json.dumps(v) for i, v in enumerate(value)]
        return "[" + ",".join(items) + "]"
    return raw


def bodies() -> dict[str, Any]:
    out: dict[str, Any] = {
        "/api/v1/alerts": {**FLURB, "occurred_at": "2024-05-01T12:00:00Z"},
        "/api/v1/events": [EVENT, {**EVENT, "count": 2, "details": {"k": "v"}}],
        "/api/v1/exemptions": {"user": "bob@example.com", "reason": "travel",
                               "requested_by": "UADMIN1", "expires_at": "2999-01-01T00:00:00Z"},
    }  # fmt: skip
    for sample in sorted(SAMPLES.glob("*.json")):
        out[f"/api/v1/alerts/{sample.stem}"] = json.loads(sample.read_text())
    return out


BODIES = bodies()


@pytest.fixture
def fuzz(fuzz_app: tuple[TestClient, Database]) -> Iterator[tuple[TestClient, Database]]:  # noqa: F811
    yield fuzz_app


def _check(client: TestClient, db: Database, request: dict[str, Any]) -> None:
    before = counts(db)
    resp = client.request(**request)
    label = f"{request['method']} {request['url']}"
    assert resp.status_code < 500, f"{label}: {resp.status_code} {resp.text[:300]}"
    if 400 <= resp.status_code < 500:
        assert counts(db) == before, f"{label}: {resp.status_code} but rows were written"
    listing = client.get("/api/v1/alerts?limit=500", headers=AUTH)
    assert listing.status_code == 200, f"after {label}: listing {listing.text[:300]}"


@pytest.mark.parametrize("path", sorted(BODIES))
def test_hostile_values_anywhere_in_a_body_are_refused_not_crashed(
    fuzz: tuple[TestClient, Database], path: str
) -> None:
    client, db = fuzz
    base = BODIES[path]

    @settings(max_examples=EXAMPLES * 2, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(where=st.sampled_from(_paths(base)), raw=HOSTILE, ndjson=st.booleans())
    def check(where: tuple[Any, ...], raw: str, ndjson: bool) -> None:
        text = render(base, where, raw)
        headers = {**AUTH, "Content-Type": "application/json"}
        if ndjson and isinstance(base, list) and path.endswith("/events"):
            # One event per line: split the rendered array back at its top level.
            text = "\n".join(render(item, where[1:], raw) if i == where[0] else json.dumps(item)
                             for i, item in enumerate(base))  # fmt: skip
            headers["Content-Type"] = "application/x-ndjson"
        _check(client, db, {"method": "POST", "url": path, "content": text.encode(),
                            "headers": headers})  # fmt: skip

    check()


LISTS = ["/api/v1/alerts", "/api/v1/audit", "/api/v1/anomalies"]


@pytest.mark.parametrize("path", LISTS)
def test_edge_times_in_since_are_refused_not_crashed(
    fuzz: tuple[TestClient, Database], path: str
) -> None:
    client, db = fuzz

    @settings(max_examples=EXAMPLES * 2, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(since=EDGE_DATES.map(json.loads))
    def check(since: str) -> None:
        _check(client, db, {"method": "GET", "url": path, "params": {"since": since},
                            "headers": AUTH})  # fmt: skip

    check()
