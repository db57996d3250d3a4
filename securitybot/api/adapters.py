"""``POST /api/v1/alerts/{adapter}``: monitoring tools' native webhooks, one alert per item.

Items that cannot be mapped are reported back (``rejected``) while the others are stored; a
"resolved" notice is recorded in the audit log (``recorded``) and never opens or closes anything,
because only the implicated person (or a responder) decides how an alert ends.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from securitybot.api.common import ApiError, authenticate, parse_json, read_body
from securitybot.ingest.adapters import registry
from securitybot.ingest.adapters.base import Adapter, NothingToDo, PayloadError
from securitybot.ingest.adapters.mapping import MappingError, Resolved, map_item
from securitybot.ingest.ratelimit import enforce
from securitybot.ingest.schema import AlertIn, audit_subject
from securitybot.ingest.service import START_EFFECT
from securitybot.runtime import Runtime
from securitybot.store import alerts as alert_store

# One webhook call should be one group of alerts, not a bulk import.
MAX_ITEMS = 1000


def _record_resolved(
    rt: Runtime, source: str, adapter: str, notices: list[tuple[int, Resolved]]
) -> list[dict[str, Any]]:
    out = []
    with rt.db.write() as session:
        for index, notice in notices:
            found = (
                alert_store.find_by_dedup(session, source, notice.dedup_key)
                if notice.dedup_key
                else None
            )
            alert_id = found.id if found is not None else None
            alert_store.audit(
                session,
                alert_id=alert_id,
                actor=f"source:{source}",
                action="alert.source_resolved",
                subject_user=audit_subject(found.user_given) if found is not None else None,
                details={"adapter": adapter, "dedup_key": notice.dedup_key, "index": index},
            )
            out.append(
                {
                    "index": index,
                    "status": "resolved",
                    "dedup_key": notice.dedup_key,
                    "alert_id": alert_id,
                }
            )
    return out


def _parse(adapter: Adapter, body: bytes) -> Any:
    """The JSON body; for tools that log one JSON document per line, those lines as a list."""
    try:
        return parse_json(body)
    except ApiError as exc:
        lines = [line for line in body.splitlines() if line.strip()]
        if not adapter.ndjson or exc.error != "malformed_json" or len(lines) < 2:
            raise
    docs = []
    for number, line in enumerate(lines, start=1):
        try:
            docs.append(parse_json(line))
        except ApiError as exc:
            raise ApiError(exc.status, exc.error, f"line {number}: {exc.message}") from None
    return docs


async def ingest_native(request: Request) -> JSONResponse:
    rt: Runtime = request.app.state.runtime
    name = request.path_params["adapter"]
    body = await read_body(request, rt.settings.server.max_body_bytes)
    principal = await authenticate(
        request, rt.authenticator, body, allow_query=name in registry.QUERY_TOKEN_ADAPTERS
    )
    enforce(request, principal.source)
    adapter = registry.ADAPTERS.get(name)
    if adapter is None:
        known = registry.names()
        raise ApiError(404, "unknown_adapter", f"no adapter {name!r}; known: {', '.join(known)}",
                       {"known": known})  # fmt: skip
    data = _parse(adapter, body)
    status, answer = await ingest_document(rt, name, principal.source, data)
    return JSONResponse(answer, status_code=status)


async def ingest_document(
    rt: Runtime, name: str, source: str, data: Any
) -> tuple[int, dict[str, Any]]:
    """Store what one parsed body of adapter ``name`` holds, for ``source``: (status, answer).

    Shared by the adapter endpoint and osquery's TLS logger endpoint.
    """
    adapter = registry.ADAPTERS[name]
    try:
        items = adapter.items(data)
    except NothingToDo as exc:
        return 200, {"adapter": name, "source": source, "accepted": [], "rejected": [],
                     "recorded": [], "ignored": str(exc)}  # fmt: skip
    except PayloadError as exc:
        raise ApiError(
            422, "validation_error", str(exc), [{"field": "(body)", "reason": str(exc)}]
        ) from None
    if len(items) > MAX_ITEMS:
        raise ApiError(
            422, "validation_error", f"{len(items)} items in one request; at most {MAX_ITEMS}"
        )

    templates = registry.templates_for(name, source, rt.settings.adapters)
    alerts: list[tuple[int, AlertIn]] = []
    notices: list[tuple[int, Resolved]] = []
    rejected: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            mapped = map_item(name, item, templates)
        except MappingError as exc:
            rejected.append({"index": index, "reason": exc.reason})
            continue
        if isinstance(mapped, Resolved):
            notices.append((index, mapped))
        else:
            alerts.append((index, mapped))
    if not alerts and not notices:
        first = rejected[0]["reason"] if rejected else "no items"
        raise ApiError(422, "validation_error", f"no item could be mapped: {first}", rejected)

    # One unit for the group committer: all stored in one transaction, or none (then a 500).
    results = await rt.ingest.submit_many([p for _, p in alerts], source)
    recorded = (
        await run_in_threadpool(_record_resolved, rt, source, name, notices) if notices else []
    )
    accepted = []
    for (index, payload), result in zip(alerts, results, strict=True):
        public = alert_store.to_public(result.alert)
        note = {"note": payload.note} if payload.note else {}
        accepted.append({**public, "index": index, "created": result.created, **note})
    created = any(r.created for r in results)
    if created:
        rt.notify_new_work([START_EFFECT])
    return 201 if created else 200, {
        "adapter": name,
        "source": source,
        "accepted": accepted,
        "rejected": rejected,
        "recorded": recorded,
    }


routes = [Route("/api/v1/alerts/{adapter}", ingest_native, methods=["POST"])]
