"""``GET /openapi.json``: the HTTP API's OpenAPI 3 document (kept in ``securitybot/openapi.yaml``).

The YAML file is the source of truth; ``tests/api/test_openapi.py`` fails when a route and the
document disagree, so the document cannot silently fall behind the code.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"


@cache
def load_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return spec


async def openapi_json(_: Request) -> JSONResponse:
    return JSONResponse(load_spec())


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
