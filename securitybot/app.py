"""ASGI application wiring: routes, error handling, lifespan of background workers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
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
from securitybot.store.db import ping

logger = logging.getLogger(__name__)


async def healthz(request: Request) -> JSONResponse:
    rt: Runtime = request.app.state.runtime
    # Channels the bot cannot post to (e.g. never invited: not_in_channel). Shown, not a 503:
    # restarting the process would not invite the bot.
    problems = rt.slack.channel_health.snapshot() if rt.slack is not None else {}
    extra = {"slack_channels": problems} if problems else {}
    if await run_in_threadpool(ping, rt.db.engine):
        return JSONResponse({"status": "ok", "database": "ok", **extra})
    return JSONResponse(
        {"status": "unavailable", "database": "unreachable", **extra}, status_code=503
    )


# Each readiness check answers within this, so a probe (timeoutSeconds: 5) gets an answer.
READY_TIMEOUT = 2.0


async def readyz(request: Request) -> JSONResponse:
    """Whether this replica can take traffic: the database answers and, with aer.stream on,
    JetStream accepts events. /healthz (liveness) asks only whether the process is sound."""
    rt: Runtime = request.app.state.runtime
    checks: dict[str, str] = {}
    try:
        ok = await asyncio.wait_for(run_in_threadpool(ping, rt.db.engine), READY_TIMEOUT)
    except TimeoutError:
        ok = False
    checks["database"] = "ok" if ok else "unreachable"
    for name, check in rt.readiness.items():
        try:
            problem = await asyncio.wait_for(check(), READY_TIMEOUT)
        except TimeoutError:
            problem = f"no answer within {READY_TIMEOUT:g} s"
        if problem is not None:
            logger.warning("not ready: %s: %s", name, problem)
        checks[name] = "ok" if problem is None else "unreachable"
    if all(v == "ok" for v in checks.values()):
        return JSONResponse({"status": "ready", **checks})
    return JSONResponse({"status": "unavailable", **checks}, status_code=503)


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
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "unexpected server error; see the server log")


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
