"""``/api/v1/aer/held``: resets held past an org's reset budget, released or discarded by a
responder (``admin`` scope, ``requested_by`` a responder, audited with the token's source)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from securitybot.aer import budget
from securitybot.api.common import ApiError, parse_id
from securitybot.api.team import _admin, _rt, _via, admin_request
from securitybot.ingest.schema import SLACK_ID_RE
from securitybot.slack.held_resets import SELF_REFUSAL, audit_refusal, decide
from securitybot.store.aer_budget_models import AerHeldBatch


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requested_by: str = Field(pattern=SLACK_ID_RE.pattern)
    # The number of held resets the responder looked at: refused (409) if more were held since.
    resets: int | None = Field(default=None, ge=0, le=1_000_000)


async def list_held(request: Request) -> JSONResponse:
    rt = _rt(request)
    await _admin(request, rt)
    include_all = request.query_params.get("all") in ("1", "true")

    def load() -> list[dict[str, Any]]:
        with rt.db.read() as session:
            return [
                budget.to_public(b, budget.held_users(session, b.id))
                for b in budget.list_batches(session, include_all=include_all)
            ]

    return JSONResponse({"held": await run_in_threadpool(load)})


async def _decide(request: Request, release: bool) -> JSONResponse:
    rt, principal, payload, actor = await admin_request(request, DecisionIn)
    raw = request.path_params["batch_id"]
    batch_id = parse_id(raw)
    if batch_id is None:
        raise ApiError(404, "not_found", f"no held resets {raw!r}")

    def run() -> dict[str, Any]:
        decide(rt.db, batch_id, release=release, actor=actor, via=_via(principal),
               shown=payload.resets)  # fmt: skip
        with rt.db.read() as session:
            batch = session.get(AerHeldBatch, batch_id)
            assert batch is not None
            return budget.to_public(batch, budget.held_users(session, batch_id))

    try:
        done = await run_in_threadpool(run)
    except budget.NotFound:
        raise ApiError(404, "not_found", f"no held resets {raw!r}") from None
    except budget.AlreadyResolved as exc:
        raise ApiError(409, "conflict", f"held resets {exc.batch_id} were already {exc.status} "
                       f"by {exc.resolved_by}") from None  # fmt: skip
    except budget.Changed as exc:
        raise ApiError(409, "conflict", f"resets: {exc.now} resets are held now, not "
                       f"{exc.shown}; look again, then decide") from None  # fmt: skip
    except budget.SelfInvolved:
        what = "release_held_resets" if release else "discard_held_resets"
        await run_in_threadpool(audit_refusal, rt.db, batch_id, actor, "self", what)
        raise ApiError(403, "forbidden", f"requested_by: {SELF_REFUSAL}") from None
    rt.notify_new_work()
    return JSONResponse(done)


async def release(request: Request) -> JSONResponse:
    return await _decide(request, True)


async def discard(request: Request) -> JSONResponse:
    return await _decide(request, False)


routes = [
    Route("/api/v1/aer/held", list_held, methods=["GET"]),
    Route("/api/v1/aer/held/{batch_id}/release", release, methods=["POST"]),
    Route("/api/v1/aer/held/{batch_id}/discard", discard, methods=["POST"]),
]
