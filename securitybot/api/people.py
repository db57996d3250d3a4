"""``POST /api/v1/people/erase``: erase one person's data (``admin`` scope; ``requested_by`` a
responder, named in the audit row with the token's source; the audit row names no one erased).
The same as ``securitybot erase-person``; see docs/privacy.md."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from securitybot.api.common import ApiError
from securitybot.api.team import admin_request
from securitybot.ingest.schema import EMAIL_RE, SLACK_ID_RE, no_nul
from securitybot.privacy.erase import EraseRefused, Erasure, erase_person


class EraseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(min_length=3, max_length=254)
    requested_by: str = Field(pattern=SLACK_ID_RE.pattern)

    _no_nul = field_validator("email", mode="before")(no_nul)

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        if not EMAIL_RE.match(v):
            raise ValueError("must be an email address")
        return v.lower()


async def erase(request: Request) -> JSONResponse:
    rt, principal, payload, actor = await admin_request(request, EraseIn)

    def run() -> Erasure:
        return erase_person(rt.db, payload.email, actor=actor, via=f"api:{principal.source}",
                            retention=rt.settings.retention)  # fmt: skip

    try:
        done = await run_in_threadpool(run)
    except EraseRefused as exc:
        raise ApiError(409, "conflict", exc.reason) from None
    if rt.slack is not None:  # this process's in-memory people cache (others: user_cache_ttl)
        for key in done.forgotten:
            await rt.slack.forget_user(key)
    return JSONResponse({"pseudonym": done.pseudonym, "rows": done.rows})


routes = [Route("/api/v1/people/erase", erase, methods=["POST"])]
