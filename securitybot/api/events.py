"""``POST /api/v1/events``: activity events for Anomaly Event Response (JSON array or NDJSON)."""

from __future__ import annotations

from datetime import timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from securitybot.aer.events import MAX_BATCH_EVENTS, ActivityEvent, BatchError, parse_batch
from securitybot.aer.metrics import EVENTS_RECEIVED
from securitybot.aer.service import AerService
from securitybot.aer.stream import StreamPublisher, StreamUnavailable
from securitybot.api.common import ApiError, authenticate, read_body
from securitybot.config import ALL_ORGS
from securitybot.ingest.ratelimit import enforce
from securitybot.runtime import Runtime
from securitybot.store.models import utcnow

_TEXT_FIELDS = ("org", "session", "user_agent", "client")
_NO_EVENTS_SCOPE = (
    "posting events needs a credential with the 'events' scope, bound to its orgs "
    "(ingest.tokens[].scopes and .orgs); an 'ingest' credential no longer posts events "
    "(docs/upgrades.md)"
)


async def _events_source(request: Request, rt: Runtime, body: bytes) -> str:
    """The source posting: events can sign people out, so only an ``events`` credential may."""
    try:
        principal = await authenticate(request, rt.authenticator, body, scope="events")
    except ApiError as exc:
        if exc.status == 403:
            raise ApiError(403, "forbidden", _NO_EVENTS_SCOPE) from None
        raise
    return principal.source


def _refusal(ev: ActivityEvent, source: str, orgs: frozenset[str]) -> tuple[str, str] | None:
    """(field, error) when this event cannot be taken from ``source``, else None."""
    bad = next((f for f in _TEXT_FIELDS if "\x00" in (getattr(ev, f) or "")), None)
    if bad is not None:  # PostgreSQL cannot store NUL in text; refuse the event, not the batch
        return bad, f"{bad}: must not contain NUL characters"
    if ALL_ORGS not in orgs and ev.org not in orgs:
        return "org", (
            f"org: source {source!r} may not post events for org {ev.org!r} (ingest.tokens[].orgs)"
        )
    return None


def _count(accepted: int, rejected: int) -> None:
    EVENTS_RECEIVED.labels("accepted").inc(accepted)
    EVENTS_RECEIVED.labels("rejected").inc(rejected)


def event_routes(
    service: AerService | None, publisher: StreamPublisher | None = None
) -> list[Route]:
    async def post_events(request: Request) -> JSONResponse:
        rt: Runtime = request.app.state.runtime
        body = await read_body(request, rt.settings.aer.max_body_bytes)
        source = await _events_source(request, rt, body)
        enforce(request, source)
        if service is None:
            raise ApiError(503, "aer_disabled", "Anomaly Event Response is off (aer.enabled)")
        ctype = request.headers.get("content-type", "application/json")
        try:
            accepted, rejected = await run_in_threadpool(parse_batch, body, ctype, utcnow())
        except BatchError as exc:
            status = 413 if str(MAX_BATCH_EVENTS) in str(exc).replace(",", "") else 400
            raise ApiError(status, "bad_batch", str(exc)) from None
        kept, kept_at = [], []
        orgs = rt.settings.ingest.event_orgs(source)
        for index, ev in accepted:
            refusal = _refusal(ev, source, orgs)
            if refusal is None:
                kept.append(ev)
                kept_at.append(index)
            else:  # refuse the event, not the batch
                rejected.append({"index": index, "field": refusal[0], "error": refusal[1]})
        rejected.sort(key=lambda r: int(r["index"]))
        if publisher is not None:  # detection happens in `securitybot aer worker`
            try:
                await publisher.publish(kept)
            except StreamUnavailable as exc:
                raise _unavailable(exc, kept_at, publisher.cfg.duplicate_window) from None
            _count(len(kept), len(rejected))
            live_since = utcnow() - timedelta(seconds=rt.settings.aer.live_window)
            history = sum(1 for ev in kept if ev.ts < live_since)
            # Judged by a worker: the anomalies are in the audit API, not in this answer.
            answer = {
                "accepted": len(kept), "history": history, "rejected": rejected,
                "anomalies": None, "decisions": None, "stream": publisher.cfg.stream,
            }  # fmt: skip
            return JSONResponse(answer, status_code=202)
        result = await run_in_threadpool(service.ingest, kept)
        _count(len(kept), len(rejected))
        if result.anomalies:
            rt.notify_new_work()
        return JSONResponse(
            {
                "accepted": result.accepted,
                "history": result.history,
                "rejected": rejected,
                "anomalies": result.anomalies,
                "decisions": result.decisions,
            },
            status_code=202,
        )

    return [Route("/api/v1/events", post_events, methods=["POST"])]


def _unavailable(exc: StreamUnavailable, kept_at: list[int], window: float) -> ApiError:
    """503: the batch is not accepted. Events JetStream did store are named (by index), and
    sending the same batch again within the duplicate window stores every event once."""
    stored = [kept_at[p] for p in exc.stored]
    message = (
        f"{exc}; {len(stored)} of {len(kept_at)} events were stored (detail.stored lists "
        f"their indices); sending the same batch again within {window:g} s stores each event "
        "that has a ts once"
    )
    return ApiError(503, "stream_unavailable", message, detail={"stored": stored})
