"""Dashboard page for storms (viewers), and releasing, discarding or escalating one
(responders: the same decision as the Slack buttons and the API, audited with the session's
role)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import BaseRoute, Route

from securitybot.dashboard.auth import CSRF_FIELD, DashboardSession, csrf_ok
from securitybot.dashboard.pages import Pages
from securitybot.dashboard.roles import Role
from securitybot.slack.storms import decide
from securitybot.store.models import utcnow
from securitybot.storms import decide as storms
from securitybot.storms.guard import OPEN, held_users
from securitybot.untrusted import db_id

PAGE = "/dashboard/storms"


def routes(dash: Pages) -> list[BaseRoute]:
    async def page(request: Request, session: DashboardSession) -> StarletteResponse:
        rt = dash._rt(request)

        def load() -> dict[str, Any]:
            now = utcnow()
            with rt.db.read() as db:
                rows = storms.list_storms(db, include_all=True, limit=50)
                found = [storms.to_public(s, held_users(db, s.id), now) for s in rows]
            return {"open": [s for s in found if s["status"] == OPEN],
                    "past": [s for s in found if s["status"] != OPEN]}  # fmt: skip

        ctx = await run_in_threadpool(load)
        q = request.query_params
        notice = {"done": q.get("done"), "changed": q.get("changed")}
        return dash._page(request, "storms.html", session=session, notice=notice, **ctx)

    async def act(request: Request, session: DashboardSession, action: str) -> StarletteResponse:
        form = await dash._form(request)
        if form is None or not csrf_ok(session.csrf, form.get(CSRF_FIELD)):
            return dash._finish(PlainTextResponse("CSRF check failed", status_code=403))
        storm_id = db_id(int(request.path_params["storm_id"]))
        if storm_id is None:
            return dash._finish(PlainTextResponse("no such storm", status_code=404))
        shown = form.get("held", "")
        if not (shown.isascii() and shown.isdigit() and len(shown) < 10):
            text = "held: the number of held alerts shown is required"
            return dash._finish(PlainTextResponse(text, status_code=400))
        rt = dash._rt(request)
        actor = f"dashboard:{session.username}"[:64]

        def run() -> storms.Resolved:
            via = {"via": "dashboard", **session.audit_details()}
            return decide(rt.db, storm_id, action=action, actor=actor, via=via, shown=int(shown))

        try:
            done = await run_in_threadpool(run)
        except storms.NotFound:
            return dash._finish(PlainTextResponse("no such storm", status_code=404))
        except storms.AlreadyResolved as exc:
            text = f"already {exc.status} by {exc.resolved_by}"
            return dash._finish(PlainTextResponse(text, status_code=409))
        except storms.Changed:
            return dash._finish(RedirectResponse(f"{PAGE}?changed={storm_id}", 303))
        rt.notify_new_work()
        return dash._finish(RedirectResponse(f"{PAGE}?done={done.storm_id}", 303))

    def route(action: str) -> Route:
        async def handler(request: Request, session: DashboardSession) -> StarletteResponse:
            return await act(request, session, action)

        return Route(f"{PAGE}/{{storm_id:int}}/{action}", dash.requires(Role.responder, handler),
                     methods=["POST"])  # fmt: skip

    return [
        Route(PAGE, dash.requires(Role.viewer, page), methods=["GET"]),
        *(route(a) for a in storms.ACTIONS),
    ]
