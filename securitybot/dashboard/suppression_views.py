"""Dashboard pages for suppression rules: the rules (active and past), the alerts they closed,
and a revoke button (admins). Uses the dashboard's own sign-in, roles, CSRF and pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response as StarletteResponse
from starlette.routing import BaseRoute, Route

from securitybot.dashboard.auth import DashboardSession
from securitybot.dashboard.pages import Pages
from securitybot.dashboard.roles import Role
from securitybot.flows import suppressions
from securitybot.store.models import utcnow

SUPPRESSED_WINDOW = timedelta(days=7)


def routes(dash: Pages) -> list[BaseRoute]:
    async def page(request: Request, session: DashboardSession) -> StarletteResponse:
        rt = dash._rt(request)

        def load() -> dict[str, Any]:
            now = utcnow()
            with rt.db.read() as db:
                rules = suppressions.list_rules(db, include_all=True)
                alerts = suppressions.suppressed_alerts(db, now - SUPPRESSED_WINDOW)
                for row in (*rules, *alerts):
                    db.expunge(row)
            active = [r for r in rules if suppressions.is_active(r, now)]
            past = [r for r in rules if not suppressions.is_active(r, now)]
            return {"active": active, "past": past[:50], "alerts": alerts,
                    "describe": suppressions.describe}  # fmt: skip

        ctx = await run_in_threadpool(load)
        notice = request.query_params.get("revoked")
        return dash._page(request, "suppressions.html", session=session, notice=notice, **ctx)

    async def revoke(request: Request, session: DashboardSession) -> StarletteResponse:
        return await dash._revoke(
            request, session, "rule_id", "/dashboard/suppressions", "no such active rule",
            lambda db, i, actor, via: suppressions.revoke(db, rule_id=i, actor=actor, via=via),
        )  # fmt: skip

    return [
        Route("/dashboard/suppressions", dash.requires(Role.viewer, page), methods=["GET"]),
        Route("/dashboard/suppressions/{rule_id:int}/revoke",
              dash.requires(Role.admin, revoke), methods=["POST"]),
    ]  # fmt: skip
