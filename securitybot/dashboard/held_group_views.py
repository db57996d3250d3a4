"""Dashboard page for a held group (held resets, storms): the open and past groups (viewers),
and a responder's decision on one (the same decision as the Slack buttons and the API, audited
with the session's role)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse
from starlette.responses import Response as StarletteResponse
from starlette.routing import BaseRoute, Route

from securitybot import held_groups
from securitybot.dashboard.auth import CSRF_FIELD, DashboardSession, csrf_ok
from securitybot.dashboard.pages import Pages
from securitybot.dashboard.roles import Role
from securitybot.held_groups import HeldGroup
from securitybot.untrusted import db_id

OPEN = "open"


def routes(dash: Pages, group: HeldGroup, page_path: str, template: str) -> list[BaseRoute]:
    """``page_path`` lists the groups; ``page_path/<id>/<action>`` decides (POST)."""
    missing = f"no such {group.noun}"

    async def page(request: Request, session: DashboardSession) -> StarletteResponse:
        rt = dash._rt(request)

        def load() -> dict[str, Any]:
            with rt.db.read() as db:
                found = group.listing(db, True, 50)
            return {"open": [g for g in found if g["status"] == OPEN],
                    "past": [g for g in found if g["status"] != OPEN]}  # fmt: skip

        ctx = await run_in_threadpool(load)
        q = request.query_params
        notice = {"done": q.get("done"), "changed": q.get("changed")}
        return dash._page(request, template, session=session, notice=notice, **ctx)

    async def act(request: Request, session: DashboardSession, action: str) -> StarletteResponse:
        form = await dash._form(request)
        if form is None or not csrf_ok(session.csrf, form.get(CSRF_FIELD)):
            return dash._finish(PlainTextResponse("CSRF check failed", status_code=403))
        group_id = db_id(int(request.path_params[group.id_param]))
        if group_id is None:
            return dash._finish(PlainTextResponse(missing, status_code=404))
        shown = form.get(group.count_field, "")
        if not (shown.isascii() and shown.isdigit() and len(shown) < 10):
            text = f"{group.count_field}: the number of held {group.counted} shown is required"
            return dash._finish(PlainTextResponse(text, status_code=400))
        rt = dash._rt(request)
        actor = f"dashboard:{session.username}"[:64]

        def run() -> None:
            via = {"via": "dashboard", **session.audit_details()}
            group.decide(rt.db, group_id, action, actor, via, int(shown))

        try:
            await run_in_threadpool(run)
        except held_groups.NotFound:
            return dash._finish(PlainTextResponse(missing, status_code=404))
        except held_groups.AlreadyResolved as exc:
            text = f"already {exc.status} by {exc.resolved_by}"
            return dash._finish(PlainTextResponse(text, status_code=409))
        except held_groups.Changed:
            return dash._finish(RedirectResponse(f"{page_path}?changed={group_id}", 303))
        rt.notify_new_work()
        return dash._finish(RedirectResponse(f"{page_path}?done={group_id}", 303))

    def decision(action: str) -> Route:
        async def handler(request: Request, session: DashboardSession) -> StarletteResponse:
            return await act(request, session, action)

        # Responders handle escalations, and a held group is one.
        return Route(f"{page_path}/{{{group.id_param}:int}}/{action}",
                     dash.requires(Role.responder, handler), methods=["POST"])  # fmt: skip

    return [
        Route(page_path, dash.requires(Role.viewer, page), methods=["GET"]),
        *(decision(action) for action in group.actions),
    ]
