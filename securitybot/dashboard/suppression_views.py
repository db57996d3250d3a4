"""Dashboard pages for suppression rules: the rules (active and past), the alerts they closed,
and a revoke button. Uses the dashboard's own sign-in, CSRF and page plumbing."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import BaseRoute, Route

from securitybot.dashboard.auth import CSRF_FIELD, csrf_ok
from securitybot.flows import suppressions
from securitybot.store.models import utcnow
from securitybot.untrusted import db_id

if TYPE_CHECKING:
    from securitybot.dashboard.views import Dashboard

SUPPRESSED_WINDOW = timedelta(days=7)


def routes(dash: Dashboard) -> list[BaseRoute]:
    async def page(request: Request) -> StarletteResponse:
        session, cookie = await dash._guard(request)
        if session is None:
            return dash._login_redirect(request)
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
        html = dash._page(request, "suppressions.html", session=session, notice=notice, **ctx)
        return dash._with_cookie(request, html, cookie)

    async def revoke(request: Request) -> StarletteResponse:
        session, _cookie = await dash._guard(request)
        if session is None:
            return dash._login_redirect(request)
        form = await dash._form(request)
        if form is None or not csrf_ok(session.csrf, form.get(CSRF_FIELD)):
            return dash._finish(PlainTextResponse("CSRF check failed", status_code=403))
        rule_id = db_id(int(request.path_params["rule_id"]))
        actor = f"dashboard:{session.username}"[:64]
        rt = dash._rt(request)

        def write() -> bool:
            if rule_id is None:
                return False
            with rt.db.write() as db:
                return suppressions.revoke(db, rule_id=rule_id, actor=actor,
                                           via={"via": "dashboard"})  # fmt: skip

        if not await run_in_threadpool(write):
            return dash._finish(PlainTextResponse("no such active rule", status_code=404))
        return dash._finish(RedirectResponse(f"/dashboard/suppressions?revoked={rule_id}", 303))

    return [
        Route("/dashboard/suppressions", page, methods=["GET"]),
        Route("/dashboard/suppressions/{rule_id:int}/revoke", revoke, methods=["POST"]),
    ]
