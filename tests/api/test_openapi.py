"""The OpenAPI document is served, and it documents exactly the routes the app has."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.routing import Match, Route
from starlette.testclient import TestClient

from securitybot.api.openapi import load_spec
from securitybot.ingest.adapters import registry
from securitybot.service import build_service
from securitybot.store.db import Database
from tests.api.conftest import api_settings

METHODS = {"get", "post", "put", "patch", "delete"}


def _public(path: str) -> bool:
    return path.startswith("/api/v1/") or path in (
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    )


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


@pytest.fixture
def routes(db: Database, db_url: str) -> list[Route]:
    _runtime, app = build_service(api_settings(db_url), db)
    return [r for r in app.routes if isinstance(r, Route) and _public(r.path)]


@pytest.fixture
def client(db: Database, db_url: str) -> Iterator[TestClient]:
    _runtime, app = build_service(api_settings(db_url), db)
    with TestClient(app) as c:
        yield c


def _documented() -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, ops in load_spec()["paths"].items()
        for method in ops
        if method in METHODS
    }


def _served_by(routes: list[Route], path: str, method: str) -> bool:
    concrete = re.sub(r"\{[^}]+\}", "1", path)
    scope = {"type": "http", "path": concrete, "root_path": "", "method": method}
    return any(route.matches(scope)[0] == Match.FULL for route in routes)


def test_every_public_route_and_method_is_documented(routes: list[Route]) -> None:
    documented = _documented()
    templates = {(_template(p), m) for p, m in documented}
    missing = []
    for route in routes:
        for method in sorted((route.methods or set()) - {"HEAD"}):
            if (_template(route.path), method) in templates:
                continue
            # A route with a parameter may be documented path by path (one per adapter).
            if not any(m == method and "{" not in p and route.matches(
                {"type": "http", "path": p, "root_path": "", "method": m})[0] == Match.FULL
                for p, m in documented):  # fmt: skip
                missing.append(f"{method} {route.path}")
    assert not missing, f"routes missing from securitybot/openapi.yaml: {missing}"


def test_everything_documented_is_served(routes: list[Route]) -> None:
    stale = [f"{m} {p}" for p, m in sorted(_documented()) if not _served_by(routes, p, m)]
    assert not stale, f"securitybot/openapi.yaml documents routes the app does not have: {stale}"


def test_every_adapter_has_its_own_documented_path() -> None:
    paths = load_spec()["paths"]
    assert {n for n in registry.names() if f"/api/v1/alerts/{n}" in paths} == set(registry.names())


def test_the_document_is_served_as_json_without_credentials(client: TestClient) -> None:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    body = resp.json()
    assert body["openapi"].startswith("3.")
    assert "/api/v1/alerts" in body["paths"]
    # YAML anchors are expanded: every adapter carries its own responses.
    assert "429" in body["paths"]["/api/v1/alerts/wazuh"]["post"]["responses"]


def test_the_document_is_valid_openapi() -> None:
    # Unquoted commas in flow mappings once made stray keys ("if any", "per result").
    from openapi_spec_validator import validate

    validate(load_spec())


def _models() -> dict[str, type]:
    from securitybot.api.held_resets import DecisionIn
    from securitybot.api.suppressions import SuppressionIn
    from securitybot.api.team import ExemptionIn
    from securitybot.ingest.schema import AlertIn

    return {"AlertIn": AlertIn, "HeldDecisionIn": DecisionIn, "ExemptionIn": ExemptionIn,
            "SuppressionIn": SuppressionIn}  # fmt: skip


@pytest.mark.parametrize("name", sorted(_models()))
def test_request_schemas_match_the_models_that_parse_them(name: str) -> None:
    documented = load_spec()["components"]["schemas"][name]
    model = _models()[name].model_json_schema(by_alias=True)  # type: ignore[attr-defined]
    assert set(documented["properties"]) == set(model["properties"])
    assert set(documented.get("required", [])) == set(model.get("required", []))


def _readme_table() -> str:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## HTTP API", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("| `"))


def test_the_readme_api_table_lists_every_public_route(routes: list[Route]) -> None:
    table = _readme_table()
    named = {_template(p) for p in re.findall(r"`(?:[A-Z/]+ )?(/[^`?\[ ]*)", table)}
    missing = sorted({_template(r.path) for r in routes} - named)
    assert not missing, f"README's HTTP API table lacks: {missing}"
