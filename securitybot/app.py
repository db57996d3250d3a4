"""ASGI application wiring: routes, error handling, lifespan of background workers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from securitybot.api import adapters as adapters_api
from securitybot.api import alerts as alerts_api
from securitybot.api import openapi as openapi_api
from securitybot.api import osquery_tls as osquery_tls_api
from securitybot.api import people as people_api
from securitybot.api import suppressions as suppressions_api
from securitybot.api import team as team_api
from securitybot.api.common import ApiError, error_response
from securitybot.body_limit import BodyLimitMiddleware
from securitybot.request_ids import RequestIdMiddleware
from securitybot.runtime import Runtime
from securitybot.slack.api_types import SlackRetryLater
from securitybot.store.db import probe
from securitybot.store.outage import OUTAGE, RETRY_AFTER_SECONDS, UNAVAILABLE_ERRORS, is_unavailable

logger = logging.getLogger(__name__)


def _unavailable_body(problem: str) -> dict[str, str]:
    body = {"reason": problem}
    known = OUTAGE.status()
    if known is not None:
        body["since"] = known["since"]
    return body


RETRY_AFTER = {"Retry-After": str(RETRY_AFTER_SECONDS)}


async def healthz(request: Request) -> JSONResponse:
    rt: Runtime = request.app.state.runtime
    # Channels the bot cannot post to (e.g. never invited: not_in_channel). Shown, not a 503:
    # restarting the process would not invite the bot.
    problems = rt.slack.channel_health.snapshot() if rt.slack is not None else {}
    extra = {"slack_channels": problems} if problems else {}
    problem = await run_in_threadpool(probe, rt.db.engine)
    if problem is None:
        return JSONResponse({"status": "ok", "database": "ok", **extra})
    return JSONResponse(
        {"status": "unavailable", "database": "unreachable", **_unavailable_body(problem),
         **extra},
        status_code=503, headers=RETRY_AFTER,
    )  # fmt: skip


# Each readiness check answers within this, so a probe (timeoutSeconds: 5) gets an answer.
READY_TIMEOUT = 2.0


async def readyz(request: Request) -> JSONResponse:
    """Whether this replica can take traffic: the database answers and, with aer.stream on,
    JetStream accepts events. /healthz (liveness) asks only whether the process is sound."""
    rt: Runtime = request.app.state.runtime
    checks: dict[str, str] = {}
    reasons: dict[str, str] = {}
    try:
        problem = await asyncio.wait_for(run_in_threadpool(probe, rt.db.engine), READY_TIMEOUT)
    except TimeoutError:
        problem = f"no answer within {READY_TIMEOUT:g} s"
    checks["database"] = "ok" if problem is None else "unreachable"
    if problem is not None:
        reasons["database"] = problem
    for name, check in rt.readiness.items():
        try:
            problem = await asyncio.wait_for(check(), READY_TIMEOUT)
        except TimeoutError:
            problem = f"no answer within {READY_TIMEOUT:g} s"
        if problem is not None:
            logger.warning("not ready: %s: %s", name, problem)
            reasons[name] = problem
        checks[name] = "ok" if problem is None else "unreachable"
    if all(v == "ok" for v in checks.values()):
        return JSONResponse({"status": "ready", **checks})
    return JSONResponse(
        {"status": "unavailable", **checks, "reasons": reasons}, status_code=503,
        headers=RETRY_AFTER,
    )  # fmt: skip


async def metrics_endpoint(request: Request) -> Response:
    rt: Runtime = request.app.state.runtime
    body = await run_in_threadpool(rt.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    names = {404: "not_found", 405: "method_not_allowed"}
    return error_response(exc.status_code, names.get(exc.status_code, "http_error"), exc.detail)


async def _unexpected(request: Request, exc: Exception) -> Response:
    if is_unavailable(exc):  # wrapped in something else on its way up
        return await _database_error(request, exc)
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "unexpected server error; see the server log")


async def _database_error(request: Request, exc: Exception) -> Response:
    """A database outage is the caller's cue to retry (503 + Retry-After), never a 500 with a
    traceback per request. Registered for the driver's errors themselves, so Starlette's
    ServerErrorMiddleware (which re-raises for uvicorn to log) never sees them."""
    if not is_unavailable(exc):
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "unexpected server error; see the server log")
    OUTAGE.refuse(exc)
    # The outage filter turns this into one line per interval, however many requests fail.
    logger.warning("%s %s answered 503", request.method, request.url.path, exc_info=exc)
    message = f"the database is unavailable; retry in {RETRY_AFTER_SECONDS} s"
    if request.url.path.startswith("/dashboard"):
        return HTMLResponse(
            f"<!doctype html><title>Unavailable</title><h1>Securitybot</h1><p>{message}.</p>",
            status_code=503, headers=RETRY_AFTER,
        )  # fmt: skip
    response = error_response(503, "database_unavailable", message)
    response.headers.update(RETRY_AFTER)
    return response


async def _slack_later(request: Request, exc: Exception) -> Response:
    """A request that needed Slack (finding someone by email) while Slack asked us to wait or
    failed for now: the caller's cue to retry, like a database outage, not a 500."""
    wait = getattr(exc, "retry_after", None) or RETRY_AFTER_SECONDS
    logger.warning("%s %s answered 503: Slack: %s", request.method, request.url.path, exc)
    response = error_response(503, "slack_unavailable",
                              f"Slack cannot answer now ({exc}); retry in {wait:g} s")  # fmt: skip
    response.headers["Retry-After"] = str(max(1, round(wait)))
    return response


# Errors answered by _database_error (503 when they mean an outage, else a logged 500).
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    SQLAlchemyError,
    *(e for e in UNAVAILABLE_ERRORS if not issubclass(e, SQLAlchemyError)),
)


def create_app(runtime: Runtime, extra_routes: list[BaseRoute] | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *alerts_api.routes,
        *adapters_api.routes,
        *osquery_tls_api.routes,
        *openapi_api.routes,
        *team_api.routes,
        *suppressions_api.routes,
        *people_api.routes,
        *(extra_routes or []),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            **dict.fromkeys(DATABASE_ERRORS, _database_error),
            SlackRetryLater: _slack_later,
            Exception: _unexpected,
        },
    )
    s = runtime.settings
    # Inside RequestIdMiddleware, so a 413 carries the request id and is in the access log.
    app.add_middleware(
        BodyLimitMiddleware,
        default=s.server.max_body_bytes,
        routes=[("/api/v1/events", s.aer.max_body_bytes), ("/slack/", s.slack.max_body_bytes)],
    )
    app.add_middleware(RequestIdMiddleware)
    app.state.runtime = runtime
    return app
