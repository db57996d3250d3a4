"""``/api/v1/exemptions`` and ``/api/v1/snoozes``: responders manage who is asked and when.

Only a credential with the ``admin`` scope may read or change them (who is exempt is itself
sensitive); an ingest token cannot. The person acting is named in ``requested_by`` (a Slack user
id), must be a responder (``escalation.responders``) and is audited with the token's source.
Nobody may exempt themselves. Responders can do the same from Slack: ``/securitybot``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from securitybot.api.common import ApiError, authenticate, parse_id, parse_json, read_body
from securitybot.flows import exemptions, snoozes
from securitybot.ingest.auth import Principal
from securitybot.ingest.ratelimit import enforce
from securitybot.ingest.schema import SLACK_ID_RE, field_errors, no_nul, person
from securitybot.runtime import Runtime
from securitybot.untrusted import utc_time


class ExemptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    user: str = Field(min_length=3, max_length=254)
    reason: str = Field(min_length=1, max_length=2000)
    requested_by: str = Field(pattern=SLACK_ID_RE.pattern)
    expires_at: datetime | None = None

    _no_nul = field_validator("user", "reason", mode="before")(no_nul)

    _user = field_validator("user")(person)

    @field_validator("expires_at")
    @classmethod
    def _future(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return v
        v = utc_time(v)  # ValueError (a 422) where astimezone would overflow
        if v <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return v


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def _require_responder(rt: Runtime, user_id: str | None) -> str:
    if not user_id or not SLACK_ID_RE.match(user_id):
        raise ApiError(422, "validation_error", "requested_by: a Slack user id is required",
                       [{"field": "requested_by", "reason": "is required"}])  # fmt: skip
    responders = rt.settings.escalation.responders
    ok = user_id in responders
    if not ok and rt.responders is not None:
        ok = await rt.responders.contains(user_id)
    if not ok:
        raise ApiError(403, "forbidden", f"requested_by: {user_id} is not a responder")
    return user_id


async def _identities(rt: Runtime, user: str) -> set[str]:
    """Every way to name this person (id and email), so self-exemption can't slip through."""
    names = {user}
    if rt.slack is not None:
        try:
            found = await rt.slack.lookup_user(user)
        except Exception:  # Slack down must not block the check on the names we have
            found = None
        if found is not None:
            names |= {found.id} | ({found.email.lower()} if found.email else set())
    return names


async def _admin(request: Request, rt: Runtime, body: bytes = b"") -> Principal:
    return await authenticate(request, rt.authenticator, body, scope="admin")


ModelT = TypeVar("ModelT", bound=BaseModel)


async def admin_request(
    request: Request, model: type[ModelT]
) -> tuple[Runtime, Principal, ModelT, str]:
    """An admin-scoped change: authenticated, rate-limited, its JSON body parsed into ``model``
    (400 if not an object, 422 naming the field), and its ``requested_by`` a responder.

    Returns the runtime, the credential, the body and the acting responder's Slack id.
    """
    rt = _rt(request)
    body = await read_body(request, rt.settings.server.max_body_bytes)
    principal = await _admin(request, rt, body)
    enforce(request, principal.source)
    data = parse_json(body)
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "the body must be a JSON object")
    try:
        payload = model.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc)
        raise ApiError(422, "validation_error", f"{errors[0]['field']}: {errors[0]['reason']}",
                       errors) from None  # fmt: skip
    actor = await _require_responder(rt, getattr(payload, "requested_by", None))
    return rt, principal, payload, actor


def _via(principal: Principal) -> dict[str, Any]:
    return {"via": "api", "source": principal.source}


async def create_exemption(request: Request) -> JSONResponse:
    rt, principal, payload, actor = await admin_request(request, ExemptionIn)
    if actor in await _identities(rt, payload.user):
        raise ApiError(403, "forbidden", "user: nobody can exempt themselves")

    def write() -> dict[str, Any] | None:
        try:
            with rt.db.write() as session:
                exemption = exemptions.create(
                    session, user=payload.user, reason=payload.reason, actor=actor,
                    expires_at=payload.expires_at, via=_via(principal),
                )  # fmt: skip
                return exemptions.to_public(exemption)
        except IntegrityError:
            return None

    created = await run_in_threadpool(write)
    if created is None:
        raise ApiError(409, "conflict", f"user: {payload.user} is already exempt")
    return JSONResponse(created, status_code=201)


async def list_exemptions(request: Request) -> JSONResponse:
    rt = _rt(request)
    await _admin(request, rt)

    def load() -> list[dict[str, Any]]:
        with rt.db.read() as session:
            return [exemptions.to_public(e) for e in exemptions.list_all(session)]

    return JSONResponse({"exemptions": await run_in_threadpool(load)})


async def delete_exemption(request: Request) -> Response:
    rt = _rt(request)
    principal = await _admin(request, rt)
    actor = await _require_responder(rt, request.query_params.get("requested_by"))
    raw = request.path_params["item_id"]
    item_id = parse_id(raw)

    def delete() -> bool:
        if item_id is None:
            return False
        with rt.db.write() as session:
            return exemptions.delete(
                session, exemption_id=item_id, actor=actor, via=_via(principal)
            )

    if not await run_in_threadpool(delete):
        raise ApiError(404, "not_found", f"no exemption {raw!r}")
    return Response(status_code=204)


async def list_snoozes(request: Request) -> JSONResponse:
    rt = _rt(request)
    await _admin(request, rt)
    include_all = request.query_params.get("all") in ("1", "true")

    def load() -> list[dict[str, Any]]:
        with rt.db.read() as session:
            return [
                snoozes.to_public(s) for s in snoozes.list_recent(session, include_all=include_all)
            ]

    return JSONResponse({"snoozes": await run_in_threadpool(load)})


async def revoke_by_id(
    request: Request, what: str, revoke: Callable[[Session, int, str, dict[str, Any]], bool]
) -> Response:
    """``DELETE …/{item_id}?requested_by=``: an admin credential, on a responder's behalf."""
    rt = _rt(request)
    principal = await _admin(request, rt)
    actor = await _require_responder(rt, request.query_params.get("requested_by"))
    raw = request.path_params["item_id"]
    item_id = parse_id(raw)

    def run() -> bool:
        if item_id is None:
            return False
        with rt.db.write() as session:
            return revoke(session, item_id, actor, _via(principal))

    if not await run_in_threadpool(run):
        raise ApiError(404, "not_found", f"no active {what} {raw!r}")
    return Response(status_code=204)


async def revoke_snooze(request: Request) -> Response:
    return await revoke_by_id(
        request, "snooze",
        lambda session, i, actor, via: snoozes.revoke(session, snooze_id=i, actor=actor, via=via),
    )  # fmt: skip


routes = [
    Route("/api/v1/exemptions", create_exemption, methods=["POST"]),
    Route("/api/v1/exemptions", list_exemptions, methods=["GET"]),
    Route("/api/v1/exemptions/{item_id}", delete_exemption, methods=["DELETE"]),
    Route("/api/v1/snoozes", list_snoozes, methods=["GET"]),
    Route("/api/v1/snoozes/{item_id}", revoke_snooze, methods=["DELETE"]),
]
