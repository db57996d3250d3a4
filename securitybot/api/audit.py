"""``GET /api/v1/audit`` and ``GET /api/v1/anomalies``: filtered, cursor-paginated listings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from securitybot.aer import store as aer_store
from securitybot.api.common import ApiError, SafeJSONResponse, authenticate, page_params
from securitybot.runtime import Runtime
from securitybot.store.aer_models import AerAnomaly
from securitybot.store.alerts import encode_cursor
from securitybot.store.models import AuditLog


def _filter(request: Request) -> aer_store.AuditFilter:
    page = page_params(request)
    q = request.query_params
    for key in ("action", "verdict", "org", "user"):
        value = q.get(key) or ""
        # PostgreSQL refuses NUL in text; no real org, user or action is that long.
        if "\x00" in value or len(value) > 256:
            raise ApiError(422, "validation_error", f"{key}: must be a plain id of at most 256")
    return aer_store.AuditFilter(
        action=q.get("action") or q.get("verdict") or None,
        org=q.get("org") or None,
        user=q.get("user") or None,
        since=page.since,
        before_id=page.before_id,
        limit=page.limit,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def audit_public(row: AuditLog) -> dict[str, Any]:
    return {
        "id": row.id, "action": row.action, "actor": row.actor, "org": row.org,
        "user": row.subject_user, "alert_id": row.alert_id, "details": row.details,
        "created_at": _iso(row.created_at),
    }  # fmt: skip


def anomaly_public(row: AerAnomaly) -> dict[str, Any]:
    return {
        "id": row.id, "org": row.org, "user": row.user_id, "type": row.type, "rule": row.rule,
        "source": row.source, "session": row.session_id, "ip": row.ip,
        "observed": row.observed, "threshold": row.threshold, "details": row.details,
        "decision": {"verdict": row.verdict, "action": row.action, "reason": row.reason},
        "response": row.response, "occurred_at": _iso(row.occurred_at),
        "created_at": _iso(row.created_at),
    }  # fmt: skip


async def list_audit(request: Request) -> JSONResponse:
    rt: Runtime = request.app.state.runtime
    # The audit log names exempted users, suppression matchers and failed sign-ins: what the
    # admin scope guards, so only an admin credential reads it.
    await authenticate(request, rt.authenticator, b"", scope="admin")
    flt = _filter(request)

    def load() -> tuple[list[dict[str, Any]], int | None]:
        with rt.db.read() as session:
            rows, more = aer_store.list_audit(session, flt)
            return [audit_public(r) for r in rows], more

    rows, more = await run_in_threadpool(load)
    cursor = encode_cursor(more) if more is not None else None
    return SafeJSONResponse({"audit": rows, "next_cursor": cursor})


async def list_anomalies(request: Request) -> JSONResponse:
    rt: Runtime = request.app.state.runtime
    # Who was flagged, from which address, and what was decided: admin only, like the audit log.
    await authenticate(request, rt.authenticator, b"", scope="admin")
    flt = _filter(request)

    def load() -> tuple[list[dict[str, Any]], int | None]:
        with rt.db.read() as session:
            rows, more = aer_store.list_anomalies(session, flt)
            return [anomaly_public(r) for r in rows], more

    rows, more = await run_in_threadpool(load)
    cursor = encode_cursor(more) if more is not None else None
    return SafeJSONResponse({"anomalies": rows, "next_cursor": cursor})


routes = [
    Route("/api/v1/audit", list_audit, methods=["GET"]),
    Route("/api/v1/anomalies", list_anomalies, methods=["GET"]),
]
