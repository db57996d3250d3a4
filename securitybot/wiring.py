"""Which background workers and extra routes the service runs, given what is configured."""

from __future__ import annotations

from starlette.routing import BaseRoute

from securitybot.runtime import Runtime


def wire_workers(runtime: Runtime, *, socket_mode: bool = False) -> list[BaseRoute]:
    return []
