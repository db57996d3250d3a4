"""Shared pieces of the HTTP edge: JSON errors, bounded body reading, authentication."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from securitybot import untrusted
from securitybot.body_limit import too_large_message
from securitybot.config import Scope
from securitybot.ingest.auth import Authenticator, AuthError, Principal, Target
from securitybot.store.alerts import decode_cursor


class ApiError(Exception):
    def __init__(self, status: int, error: str, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.detail = status, error, message, detail

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.error, "message": self.message}
        if self.detail is not None:
            body["detail"] = self.detail
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(body, status_code=self.status, headers=headers)


MAX_DB_ID = untrusted.MAX_DB_ID


def parse_id(raw: str) -> int | None:
    """A whole number from a URL, or None.

    ``str.isdigit`` alone also accepts ``"²"`` and 5,000-digit strings, on which ``int()`` or
    the driver then fails with a 500; those are a 404/422 for the caller instead.
    """
    if raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) <= MAX_DB_ID:
        return int(raw)
    return None


def check_query(request: Request) -> None:
    """Refuse NUL in query values: PostgreSQL text cannot hold it, so a filter would be a 500."""
    for key, value in request.query_params.multi_items():
        if "\x00" in value:
            raise ApiError(422, "validation_error", f"{key}: must not contain NUL characters")


class SafeJSONResponse(JSONResponse):
    """Renders rows stored by older versions that validated less (lone surrogates, NaN).

    Those must still list: they are scrubbed (U+FFFD, null) rather than failing the page.
    """

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except (UnicodeEncodeError, ValueError):
            return super().render(untrusted.scrub(content))


def error_response(status: int, error: str, message: str, detail: Any = None) -> JSONResponse:
    return ApiError(status, error, message, detail).response()


async def read_body(request: Request, limit: int) -> bytes:
    """Read at most ``limit`` bytes; refuse early on Content-Length so nothing big is buffered."""
    declared = request.headers.get("content-length")
    if (
        declared
        and declared.isascii()
        and declared.isdigit()
        and (len(declared) > 18 or int(declared) > limit)
    ):
        raise ApiError(413, "body_too_large", too_large_message(limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", too_large_message(limit))
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """The decoded body, refused with a 4xx for anything the service could not store or echo."""
    if not body.strip():
        raise ApiError(400, "malformed_json", "the body is empty; send a JSON object")
    try:
        data = untrusted.loads(body)
        untrusted.check(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None
    except untrusted.UnsafeJson as exc:
        raise refused(exc) from None
    return data


def refused(exc: untrusted.UnsafeJson) -> ApiError:
    detail = [{"field": exc.field, "reason": exc.reason}]
    return ApiError(422, "validation_error", str(exc), detail)


async def authenticate(
    request: Request,
    authenticator: Authenticator,
    body: bytes,
    *,
    allow_query: bool = False,
    scope: Scope = "ingest",
) -> Principal:
    """The caller's source, if its credential is valid (401) and carries ``scope`` (403).

    An HMAC signature covers the whole request and is accepted once, reads included: a replay
    within its window is a 401 ``replayed_signature`` (see ``ingest.replays``).
    """
    query_token = request.query_params.get("token") if allow_query else None
    scope_ = request.scope
    target = Target(request.method, scope_["path"], scope_.get("query_string", b""))
    try:
        principal = authenticator.authenticate(request.headers, body, query_token, target)
    except AuthError as exc:
        raise ApiError(401, "unauthorized", exc.reason) from None
    guard = authenticator.replays
    if (
        principal.signature is not None
        and guard is not None
        and not await run_in_threadpool(
            guard.first_use, principal.source, _replay_target(target), principal.signature
        )
    ):
        raise ApiError(
            401,
            "replayed_signature",
            "this signature was already used; sign the request again with a fresh timestamp",
        )
    if scope not in principal.scopes:
        raise ApiError(
            403, "forbidden", f"this credential lacks the {scope!r} scope (ingest.tokens[].scopes)"
        )
    return principal


def _replay_target(target: Target) -> str:
    """What a signature is accepted once for: method, path and query. The v2 signature covers
    them already; naming them in the key too costs nothing and keeps the key unambiguous."""
    return f"{target.method} {target.path}?{target.query.decode('latin-1')}"


@dataclass(frozen=True)
class Page:
    since: datetime | None
    before_id: int | None
    limit: int


def page_params(request: Request) -> Page:
    """The ``since``, ``limit`` and ``cursor`` every list endpoint takes, validated once."""
    check_query(request)
    q = request.query_params
    since = None
    if q.get("since"):
        try:
            since = datetime.fromisoformat(q["since"].replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(422, "validation_error", "since: must be an ISO 8601 time") from None
        try:
            since = untrusted.utc_time(since)
        except ValueError as exc:
            raise ApiError(422, "validation_error", f"since: {exc}") from None
    limit_raw = q.get("limit", "50")
    limit = parse_id(limit_raw)
    if limit is None or not 1 <= limit <= 500:
        raise ApiError(422, "validation_error", "limit: must be a whole number from 1 to 500")
    before = None
    if q.get("cursor"):
        try:
            before = decode_cursor(q["cursor"])
        except ValueError as exc:
            raise ApiError(422, "validation_error", f"cursor: {exc}") from None
    return Page(since=since, before_id=before, limit=limit)
