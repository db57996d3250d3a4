"""``/api/v1/alerts``: ingest, fetch, list."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from securitybot.api.common import (
    ApiError,
    SafeJSONResponse,
    authenticate,
    page_params,
    parse_id,
    parse_json,
    read_body,
)
from securitybot.ingest.auth import Principal
from securitybot.ingest.ratelimit import enforce
from securitybot.ingest.schema import AlertIn, field_errors
from securitybot.ingest.service import START_EFFECT
from securitybot.runtime import Runtime
from securitybot.store import alerts as alert_store

STATUSES = {
    "new",
    "awaiting_ack",
    "awaiting_2fa",
    "held",
    "resolved",
    "escalated",
    "triaging",
    "closed",
}


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def create_alert(request: Request) -> JSONResponse:
    rt = _rt(request)
    body = await read_body(request, rt.settings.server.max_body_bytes)
    principal = await authenticate(request, rt.authenticator, body)
    enforce(request, principal.source)
    data = parse_json(body)
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    try:
        payload = AlertIn.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc)
        first = errors[0]
        raise ApiError(
            422, "validation_error", f"{first['field']}: {first['reason']}", errors
        ) from None
    if payload.source and payload.source != principal.source:
        raise ApiError(
            403,
            "forbidden",
            f"source: this credential belongs to {principal.source!r}, not {payload.source!r}",
        )
    result = await rt.ingest.submit(payload, principal.source)
    body_out = alert_store.to_public(result.alert)
    body_out["created"] = result.created
    if payload.note:
        body_out["note"] = payload.note
    if result.created:
        rt.notify_new_work([START_EFFECT])
    return JSONResponse(body_out, status_code=201 if result.created else 200)


def own_source(principal: Principal) -> str | None:
    """Whose alerts a credential may read: every source's with ``admin``, else its own only
    (a monitoring tool's token must not read what other tools reported)."""
    return None if "admin" in principal.scopes else principal.source


async def get_alert(request: Request) -> JSONResponse:
    rt = _rt(request)
    principal = await authenticate(request, rt.authenticator, b"")
    only = own_source(principal)
    raw_id = request.path_params["alert_id"]
    alert_id = parse_id(raw_id)
    if alert_id is None:
        raise ApiError(404, "not_found", f"no alert {raw_id!r}")

    def load() -> dict[str, object] | None:
        with rt.db.read() as session:
            alert = alert_store.get(session, alert_id)
            if alert is None or (only is not None and alert.source != only):
                return None  # another source's alert: as if it did not exist
            return alert_store.to_public(alert)

    found = await run_in_threadpool(load)
    if found is None:
        raise ApiError(404, "not_found", f"no alert {raw_id}")
    return SafeJSONResponse(found)


def _filter_from_query(request: Request, source: str | None) -> alert_store.AlertFilter:
    page = page_params(request)  # first: it also refuses NUL in any query value
    q = request.query_params
    statuses = [s for s in q.get("status", "").split(",") if s]
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise ApiError(
            422,
            "validation_error",
            f"status: unknown status {bad[0]!r}",
            [{"field": "status", "reason": f"must be one of {sorted(STATUSES)}"}],
        )
    return alert_store.AlertFilter(
        status=statuses,
        user=q.get("user") or None,
        kind=q.get("kind") or None,
        since=page.since,
        before_id=page.before_id,
        limit=page.limit,
        source=source,
    )


async def list_alerts(request: Request) -> JSONResponse:
    rt = _rt(request)
    principal = await authenticate(request, rt.authenticator, b"")
    flt = _filter_from_query(request, own_source(principal))

    def load() -> tuple[list[dict[str, object]], str | None]:
        with rt.db.read() as session:
            rows, cursor = alert_store.list_alerts(session, flt)
            return [alert_store.to_public(a) for a in rows], cursor

    rows, cursor = await run_in_threadpool(load)
    return SafeJSONResponse({"alerts": rows, "next_cursor": cursor})


routes = [
    Route("/api/v1/alerts", create_alert, methods=["POST"]),
    Route("/api/v1/alerts", list_alerts, methods=["GET"]),
    Route("/api/v1/alerts/{alert_id}", get_alert, methods=["GET"]),
]
