"""osquery's TLS remote API: ``enroll`` hands a node a key, ``log`` takes its logs with that key.

osqueryd (``--logger_plugin=tls``) cannot send an Authorization header: it posts its enroll
secret once to the enroll endpoint, keeps the ``node_key`` it is given, and puts that key in the
body of every log request (osquery docs, "Remote server API"). Here the enroll secret is an
ingest token; the node key stands for that token's source and is stored only as a digest.

An unknown node key is answered ``{"node_invalid": true}`` with a 200, as osquery expects: that
is what makes osqueryd enroll again and resend its buffered logs (any non-200 is only retried).
A log body that cannot be mapped is answered 200 too, listing what was refused: osquery would
otherwise resend the same buffer forever and hold back every later log.
"""

from __future__ import annotations

import logging
import zlib
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from securitybot.api.adapters import ingest_document
from securitybot.api.common import ApiError, parse_json, read_body
from securitybot.body_limit import too_large_message
from securitybot.ingest.auth import AuthError
from securitybot.ingest.ratelimit import enforce
from securitybot.runtime import Runtime
from securitybot.store import osquery_nodes

logger = logging.getLogger(__name__)

ENROLL_PATH = "/api/v1/osquery/enroll"
LOG_PATH = "/api/v1/osquery/log"


def _inflate(request: Request, body: bytes, limit: int) -> bytes:
    """The body osqueryd sent with ``--logger_tls_compress`` (gzip), never inflated past limit."""
    if request.headers.get("content-encoding", "identity").lower() != "gzip":
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        plain = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ApiError(400, "malformed_body", f"the gzip body cannot be inflated: {exc}") from None
    if len(plain) > limit or inflater.unconsumed_tail:
        raise ApiError(413, "body_too_large", too_large_message(limit))
    return plain


async def _object(request: Request, limit: int) -> dict[str, Any]:
    body = _inflate(request, await read_body(request, limit), limit)
    data = parse_json(body)
    if not isinstance(data, dict):
        raise ApiError(422, "validation_error", "the body must be a JSON object")
    return data


def _ingest_sources(rt: Runtime) -> set[str]:
    return {t.source for t in rt.settings.ingest.tokens if "ingest" in t.scopes}


async def enroll(request: Request) -> JSONResponse:
    rt: Runtime = request.app.state.runtime
    data = await _object(request, rt.settings.server.max_body_bytes)
    secret = data.get("enroll_secret")
    try:
        if not isinstance(secret, str) or not secret.strip():
            raise AuthError("enroll_secret: missing (osqueryd --enroll_secret_path)")
        source, scopes = rt.authenticator.match_token(secret.strip())
    except AuthError as exc:
        # The body osquery reads; the status tells people and proxies what happened.
        return JSONResponse(
            {"node_invalid": True, "error": "unauthorized", "message": exc.reason}, status_code=401
        )
    if "ingest" not in scopes:
        return JSONResponse(
            {"node_invalid": True, "error": "forbidden",
             "message": "this token cannot ingest alerts (scopes)"},
            status_code=403,
        )  # fmt: skip
    enforce(request, source)
    host = data.get("host_identifier")
    # PostgreSQL text cannot hold NUL; the identifier is only a label for people.
    host = host.replace("\x00", "") if isinstance(host, str) else ""

    def store() -> str:
        with rt.db.write() as session:
            return osquery_nodes.enroll(session, source, host)

    node_key = await run_in_threadpool(store)
    logger.info("osquery node %r enrolled for source %s", host[:255], source)
    return JSONResponse({"node_key": node_key, "node_invalid": False})


async def log(request: Request) -> JSONResponse:
    rt: Runtime = request.app.state.runtime
    data = await _object(request, rt.settings.server.max_body_bytes)
    node_key = data.get("node_key")
    source = None
    if isinstance(node_key, str) and node_key:

        def recognise() -> str | None:
            with rt.db.write() as session:
                node = osquery_nodes.recognise(session, node_key)
                return node.source if node is not None else None

        source = await run_in_threadpool(recognise)
    if source is None or source not in _ingest_sources(rt):
        # Unknown key, or its source's token was withdrawn from ingest.tokens: enrolling again
        # needs a token that is still valid.
        return JSONResponse({"node_invalid": True})
    enforce(request, source)
    body = {k: v for k, v in data.items() if k != "node_key"}  # the key is no alert detail
    try:
        _status, answer = await ingest_document(rt, "osquery", source, body)
    except ApiError as exc:
        if exc.status != 422:
            raise
        logger.warning("osquery log from source %s refused: %s", source, exc.message)
        return JSONResponse(
            {"node_invalid": False, "error": exc.error, "message": exc.message,
             "detail": exc.detail}
        )  # fmt: skip
    return JSONResponse({"node_invalid": False, **answer})


routes = [
    Route(ENROLL_PATH, enroll, methods=["POST"]),
    Route(LOG_PATH, log, methods=["POST"]),
]
