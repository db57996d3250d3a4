"""``POST /api/v1/events``: activity events for Anomaly Event Response (JSON array or NDJSON)."""

from __future__ import annotations

from datetime import timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from securitybot.aer.events import MAX_BATCH_EVENTS, BatchError, parse_batch
from securitybot.aer.service import AerService
from securitybot.aer.stream import StreamPublisher, StreamUnavailable
from securitybot.api.common import ApiError, authenticate, read_body
from securitybot.ingest.ratelimit import enforce
from securitybot.runtime import Runtime
from securitybot.store.models import utcnow

_TEXT_FIELDS = ("org", "session", "user_agent", "client")


def event_routes(
    service: AerService | None, publisher: StreamPublisher | None = None
) -> list[Route]:
    async def post_events(request: Request) -> JSONResponse:
        rt: Runtime = request.app.state.runtime
        body = await read_body(request, rt.settings.aer.max_body_bytes)
        enforce(request, (await authenticate(request, rt.authenticator, body)).source)
        if service is None:
            raise ApiError(503, "aer_disabled", "Anomaly Event Response is off (aer.enabled)")
        ctype = request.headers.get("content-type", "application/json")
        try:
            accepted, rejected = await run_in_threadpool(parse_batch, body, ctype, utcnow())
        except BatchError as exc:
            status = 413 if str(MAX_BATCH_EVENTS) in str(exc).replace(",", "") else 400
            raise ApiError(status, "bad_batch", str(exc)) from None
        kept, kept_at = [], []
        for index, ev in accepted:
            bad = next((f for f in _TEXT_FIELDS if "\x00" in (getattr(ev, f) or "")), None)
            if bad is None:
                kept.append(ev)
                kept_at.append(index)
            else:  # PostgreSQL cannot store NUL in text; refuse the event, not the batch
                error = f"{bad}: must not contain NUL characters"
                rejected.append({"index": index, "field": bad, "error": error})
        rejected.sort(key=lambda r: int(r["index"]))
        if publisher is not None:  # detection happens in `securitybot aer worker`
            try:
                await publisher.publish(kept)
            except StreamUnavailable as exc:
                raise _unavailable(exc, kept_at, publisher.cfg.duplicate_window) from None
            live_since = utcnow() - timedelta(seconds=rt.settings.aer.live_window)
            history = sum(1 for ev in kept if ev.ts < live_since)
            # Judged by a worker: the anomalies are in the audit API, not in this answer.
            answer = {
                "accepted": len(kept), "history": history, "rejected": rejected,
                "anomalies": None, "decisions": None, "stream": publisher.cfg.stream,
            }  # fmt: skip
            return JSONResponse(answer, status_code=202)
        result = await run_in_threadpool(service.ingest, kept)
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
