"""The API's side of a held group (held resets, storms): listing them, and a responder's
decision (``admin`` scope, ``requested_by`` a responder, audited with the token's source)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from securitybot import held_groups
from securitybot.api.common import ApiError, parse_id
from securitybot.api.team import _admin, _rt, _via, admin_request
from securitybot.held_groups import HeldGroup


def routes(group: HeldGroup, path: str, listed_as: str, decision: type[BaseModel]) -> list[Route]:
    """``GET path`` lists the open groups (``?all=1``: every group) as ``{listed_as: [...]}``;
    ``POST path/{id}/<action>`` decides with a ``decision`` body (``requested_by`` and the
    count the responder saw)."""

    async def listing(request: Request) -> JSONResponse:
        rt = _rt(request)
        await _admin(request, rt)
        include_all = request.query_params.get("all") in ("1", "true")

        def load() -> list[dict[str, Any]]:
            with rt.db.read() as session:
                return group.listing(session, include_all, 100)

        return JSONResponse({listed_as: await run_in_threadpool(load)})

    async def decide(request: Request, action: str) -> JSONResponse:
        rt, principal, payload, actor = await admin_request(request, decision)
        raw = request.path_params[group.id_param]
        group_id = parse_id(raw)
        if group_id is None:
            raise ApiError(404, "not_found", f"no {group.noun} {raw!r}")
        shown = getattr(payload, group.count_field)

        def run() -> dict[str, Any]:
            group.decide(rt.db, group_id, action, actor, _via(principal), shown)
            with rt.db.read() as session:
                return group.public(session, group_id)

        try:
            done = await run_in_threadpool(run)
        except held_groups.NotFound:
            raise ApiError(404, "not_found", f"no {group.noun} {raw!r}") from None
        except held_groups.AlreadyResolved as exc:
            text = group.already.format(id=exc.group_id, status=exc.status, by=exc.resolved_by)
            raise ApiError(409, "conflict", text) from None
        except held_groups.Changed as exc:
            text = (f"{group.count_field}: {exc.now} {group.counted} are held now, not "
                    f"{exc.shown}; look again, then decide")  # fmt: skip
            raise ApiError(409, "conflict", text) from None
        except held_groups.SelfInvolved:
            what = group.actions[action]
            await run_in_threadpool(group.audit_refusal, rt.db, group_id, actor, "self", what)
            raise ApiError(403, "forbidden", f"requested_by: {group.self_refusal}") from None
        rt.notify_new_work()
        return JSONResponse(done)

    def decision_route(action: str) -> Route:
        async def endpoint(request: Request) -> JSONResponse:
            return await decide(request, action)

        return Route(f"{path}/{{{group.id_param}}}/{action}", endpoint, methods=["POST"])

    return [
        Route(path, listing, methods=["GET"]),
        *(decision_route(action) for action in group.actions),
    ]
