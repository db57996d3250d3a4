"""``/api/v1/suppressions``: the team's suppression rules (maintenance windows), like exemptions.

Only an ``admin`` credential may read or change them; ``requested_by`` names the responder
acting, who is audited with the token's source. Every rule expires, at most
``escalation.max_suppression`` from now, and kinds with ``always_escalate`` are refused.
Responders can do the same from Slack: ``/securitybot suppress|rules|revoke R3``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from securitybot.api.common import ApiError
from securitybot.api.team import _admin, _rt, _via, admin_request, revoke_by_id
from securitybot.flows import suppressions
from securitybot.ingest.schema import SLACK_ID_RE, no_nul
from securitybot.untrusted import utc_time


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    matchers: dict[str, str] = Field(default_factory=dict, max_length=suppressions.MAX_MATCHERS)
    reason: str = Field(min_length=1, max_length=2000)
    requested_by: str = Field(pattern=SLACK_ID_RE.pattern)
    expires_at: datetime

    _no_nul = field_validator("reason", mode="before")(no_nul)

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, v: dict[str, str]) -> dict[str, str]:
        for name, pattern in v.items():
            problem = suppressions.matcher_error(name, pattern)
            if problem:
                raise ValueError(problem)
        return v

    @field_validator("expires_at")
    @classmethod
    def _future(cls, v: datetime) -> datetime:
        v = utc_time(v)
        if v <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return v


def _invalid(field: str, reason: str) -> ApiError:
    return ApiError(422, "validation_error", f"{field}: {reason}",
                    [{"field": field, "reason": reason}])  # fmt: skip


async def create_suppression(request: Request) -> JSONResponse:
    rt, principal, payload, actor = await admin_request(request, SuppressionIn)
    if payload.kind not in rt.kinds:
        raise _invalid("kind", f"no alert kind {payload.kind!r}")
    if rt.kinds.get(payload.kind).always_escalate:
        raise _invalid("kind", "always_escalate kinds cannot be suppressed")
    longest = timedelta(seconds=rt.settings.escalation.max_suppression)
    if payload.expires_at > datetime.now(UTC) + longest:
        raise _invalid("expires_at", "beyond escalation.max_suppression from now")

    def write() -> dict[str, Any]:
        with rt.db.write() as session:
            rule = suppressions.create(
                session, kind=payload.kind, matchers=payload.matchers, reason=payload.reason,
                actor=actor, expires_at=payload.expires_at, via=_via(principal),
            )  # fmt: skip
            return suppressions.to_public(rule)

    return JSONResponse(await run_in_threadpool(write), status_code=201)


async def list_suppressions(request: Request) -> JSONResponse:
    rt = _rt(request)
    await _admin(request, rt)
    include_all = request.query_params.get("all") in ("1", "true")

    def load() -> list[dict[str, Any]]:
        with rt.db.read() as session:
            return [
                suppressions.to_public(r)
                for r in suppressions.list_rules(session, include_all=include_all)
            ]

    return JSONResponse({"suppressions": await run_in_threadpool(load)})


async def revoke_suppression(request: Request) -> Response:
    return await revoke_by_id(
        request, "suppression rule",
        lambda session, i, actor, via: suppressions.revoke(
            session, rule_id=i, actor=actor, via=via
        ),
    )  # fmt: skip


routes = [
    Route("/api/v1/suppressions", create_suppression, methods=["POST"]),
    Route("/api/v1/suppressions", list_suppressions, methods=["GET"]),
    Route("/api/v1/suppressions/{item_id}", revoke_suppression, methods=["DELETE"]),
]
