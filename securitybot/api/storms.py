"""``/api/v1/storms``: alerts the storm guard held, released, discarded or escalated by a
responder (``admin`` scope, ``requested_by`` a responder, audited with the token's source)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from securitybot.api.common import ApiError, parse_id
from securitybot.api.team import _admin, _rt, _via, admin_request
from securitybot.ingest.schema import SLACK_ID_RE
from securitybot.slack.storms import SELF_REFUSAL, audit_refusal, decide
from securitybot.store.models import utcnow
from securitybot.store.storm_models import Storm
from securitybot.storms import decide as storms
from securitybot.storms.guard import held_users


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requested_by: str = Field(pattern=SLACK_ID_RE.pattern)
    # The number of held alerts the responder looked at: refused (409) if more were held since.
    held: int | None = Field(default=None, ge=0, le=1_000_000)


def public(session: Any, storm: Storm) -> dict[str, Any]:
    return storms.to_public(storm, held_users(session, storm.id), utcnow())


async def list_storms(request: Request) -> JSONResponse:
    rt = _rt(request)
    await _admin(request, rt)
    include_all = request.query_params.get("all") in ("1", "true")

    def load() -> list[dict[str, Any]]:
        with rt.db.read() as session:
            return [public(session, s) for s in
                    storms.list_storms(session, include_all=include_all)]  # fmt: skip

    return JSONResponse({"storms": await run_in_threadpool(load)})


async def _decide(request: Request, action: str) -> JSONResponse:
    rt, principal, payload, actor = await admin_request(request, DecisionIn)
    raw = request.path_params["storm_id"]
    storm_id = parse_id(raw)
    if storm_id is None:
        raise ApiError(404, "not_found", f"no storm {raw!r}")

    def run() -> dict[str, Any]:
        decide(rt.db, storm_id, action=action, actor=actor, via=_via(principal),
               shown=payload.held)  # fmt: skip
        with rt.db.read() as session:
            storm = session.get(Storm, storm_id)
            assert storm is not None
            return public(session, storm)

    try:
        done = await run_in_threadpool(run)
    except storms.NotFound:
        raise ApiError(404, "not_found", f"no storm {raw!r}") from None
    except storms.AlreadyResolved as exc:
        raise ApiError(409, "conflict", f"storm {exc.storm_id} was already {exc.status} "
                       f"by {exc.resolved_by}") from None  # fmt: skip
    except storms.Changed as exc:
        raise ApiError(409, "conflict", f"held: {exc.now} alerts are held now, not "
                       f"{exc.shown}; look again, then decide") from None  # fmt: skip
    except storms.SelfInvolved:
        await run_in_threadpool(audit_refusal, rt.db, storm_id, actor, "self", f"{action}_storm")
        raise ApiError(403, "forbidden", f"requested_by: {SELF_REFUSAL}") from None
    rt.notify_new_work()
    return JSONResponse(done)


async def release(request: Request) -> JSONResponse:
    return await _decide(request, "release")


async def discard(request: Request) -> JSONResponse:
    return await _decide(request, "discard")


async def escalate(request: Request) -> JSONResponse:
    return await _decide(request, "escalate")


routes = [
    Route("/api/v1/storms", list_storms, methods=["GET"]),
    Route("/api/v1/storms/{storm_id}/release", release, methods=["POST"]),
    Route("/api/v1/storms/{storm_id}/discard", discard, methods=["POST"]),
    Route("/api/v1/storms/{storm_id}/escalate", escalate, methods=["POST"]),
]
