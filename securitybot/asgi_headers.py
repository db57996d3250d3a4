"""A request header read straight from the ASGI scope, for middleware that runs on every request
(building Starlette's ``Headers``, or a dict of them, costs more than the scan)."""

from __future__ import annotations

from starlette.types import Scope


def header(scope: Scope, name: bytes) -> bytes:
    """The first value of header ``name`` (lower-case, as ASGI servers give names), or b""."""
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value)
    return b""
