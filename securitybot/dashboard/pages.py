"""What a dashboard page module takes of ``views.Dashboard``: rendering, forms, the role guard,
the runtime and the audit log. The page modules (storms, held resets, suppressions, sign-in
through OIDC) are written against this, so ``views`` can import them and they need not import
``views``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response as StarletteResponse

from securitybot.dashboard.auth import DashboardAuth, DashboardSession
from securitybot.dashboard.roles import Role
from securitybot.runtime import Runtime

Handler = Callable[[Request, DashboardSession], Awaitable[StarletteResponse]]
Endpoint = Callable[[Request], Awaitable[StarletteResponse]]


class Pages(Protocol):
    auth: DashboardAuth

    def _page(
        self, request: Request, template: str, status: int = 200,
        session: DashboardSession | None = None, **ctx: Any,
    ) -> StarletteResponse: ...  # fmt: skip

    @staticmethod
    def _finish(response: StarletteResponse) -> StarletteResponse: ...

    @staticmethod
    async def _form(request: Request) -> dict[str, str] | None: ...

    def requires(self, role: Role, handler: Handler) -> Endpoint: ...

    def refused(
        self, request: Request, session: DashboardSession | None, needed: Role | None = None,
        **ctx: Any,
    ) -> StarletteResponse: ...  # fmt: skip

    @staticmethod
    def _rt(request: Request) -> Runtime: ...

    def _audit(self, rt: Runtime, username: str, action: str, **kw: Any) -> None: ...

    async def _revoke(
        self, request: Request, session: DashboardSession, id_param: str, back: str,
        missing: str, revoke: Callable[[Session, int, str, dict[str, Any]], bool],
    ) -> StarletteResponse: ...  # fmt: skip
