"""Dashboard page for resets held past an org's reset budget (viewers), and releasing or
discarding a batch (responders: the same decision as the Slack buttons and the API, each held
user reset once, audited with the session's role)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import BaseRoute, Route

from securitybot.aer import budget
from securitybot.dashboard.auth import CSRF_FIELD, DashboardSession, csrf_ok
from securitybot.dashboard.pages import Pages
from securitybot.dashboard.roles import Role
from securitybot.slack.held_resets import decide
from securitybot.untrusted import db_id

PAGE = "/dashboard/held"


def routes(dash: Pages) -> list[BaseRoute]:
    async def page(request: Request, session: DashboardSession) -> StarletteResponse:
        rt = dash._rt(request)

        def load() -> dict[str, Any]:
            with rt.db.read() as db:
                rows = budget.list_batches(db, include_all=True, limit=50)
                batches = [budget.to_public(b, budget.held_users(db, b.id)) for b in rows]
            return {"open": [b for b in batches if b["status"] == budget.OPEN],
                    "past": [b for b in batches if b["status"] != budget.OPEN]}  # fmt: skip

        ctx = await run_in_threadpool(load)
        q = request.query_params
        notice = {"done": q.get("done"), "changed": q.get("changed")}
        return dash._page(request, "held.html", session=session, notice=notice, **ctx)

    async def act(request: Request, session: DashboardSession, release: bool) -> StarletteResponse:
        form = await dash._form(request)
        if form is None or not csrf_ok(session.csrf, form.get(CSRF_FIELD)):
            return dash._finish(PlainTextResponse("CSRF check failed", status_code=403))
        batch_id = db_id(int(request.path_params["batch_id"]))
        if batch_id is None:
            return dash._finish(PlainTextResponse("no such held resets", status_code=404))
        shown = form.get("resets", "")
        if not (shown.isascii() and shown.isdigit() and len(shown) < 10):
            text = "resets: the number of held resets shown is required"
            return dash._finish(PlainTextResponse(text, status_code=400))
        rt = dash._rt(request)
        actor = f"dashboard:{session.username}"[:64]

        def run() -> budget.Resolved:
            via = {"via": "dashboard", **session.audit_details()}
            return decide(rt.db, batch_id, release=release, actor=actor, via=via, shown=int(shown))

        try:
            done = await run_in_threadpool(run)
        except budget.NotFound:
            return dash._finish(PlainTextResponse("no such held resets", status_code=404))
        except budget.AlreadyResolved as exc:
            text = f"already {exc.status} by {exc.resolved_by}"
            return dash._finish(PlainTextResponse(text, status_code=409))
        except budget.Changed:
            return dash._finish(RedirectResponse(f"{PAGE}?changed={batch_id}", 303))
        rt.notify_new_work()
        return dash._finish(RedirectResponse(f"{PAGE}?done={done.batch_id}", 303))

    async def release(request: Request, session: DashboardSession) -> StarletteResponse:
        return await act(request, session, True)

    async def discard(request: Request, session: DashboardSession) -> StarletteResponse:
        return await act(request, session, False)

    # Responders handle escalations, and this is one: the held resets of an org.
    return [
        Route(PAGE, dash.requires(Role.viewer, page), methods=["GET"]),
        Route(PAGE + "/{batch_id:int}/release", dash.requires(Role.responder, release),
              methods=["POST"]),
        Route(PAGE + "/{batch_id:int}/discard", dash.requires(Role.responder, discard),
              methods=["POST"]),
    ]  # fmt: skip
