"""The team's changes to one person (``admin`` scope; ``requested_by`` a responder, named in the
audit row with the token's source):

- ``POST /api/v1/people/erase``: erase one person's data (the audit row names no one erased).
  The same as ``securitybot erase-person``; see docs/privacy.md.
- ``PUT /api/v1/people/locale``: the language a person is asked in (``null`` clears the choice).
  The same as ``/securitybot locale @user de``, stored and audited (``person.locale_set``) by
  the same code; see docs/i18n.md.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from securitybot.api.common import ApiError
from securitybot.api.team import admin_request
from securitybot.config.i18n import shipped_locale
from securitybot.i18n import negotiate
from securitybot.ingest.schema import EMAIL_RE, SLACK_ID_RE, no_nul, person
from securitybot.privacy.erase import EraseRefused, Erasure, erase_person
from securitybot.runtime import Runtime
from securitybot.slack import locale_command


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


class LocaleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    user: str = Field(min_length=3, max_length=254)  # a Slack user id or an email address
    # Required, so a misspelt key never clears a choice by accident; null clears it.
    locale: str | None = Field(max_length=35)
    requested_by: str = Field(pattern=SLACK_ID_RE.pattern)

    _no_nul = field_validator("user", "locale", mode="before")(no_nul)
    _user = field_validator("user")(person)

    @field_validator("locale")
    @classmethod
    def _shipped(cls, v: str | None) -> str | None:
        return None if v is None else negotiate(shipped_locale(v))  # "de-AT" -> "de"


async def _slack_id(rt: Runtime, user: str) -> str:
    """The Slack user id the choice is kept under (it is read by id before every message)."""
    if SLACK_ID_RE.match(user):
        return user
    found = await rt.slack.lookup_user(user) if rt.slack is not None else None
    if found is None:
        raise ApiError(404, "not_found", "user: no Slack user has this email address")
    return str(found.id)


async def set_locale(request: Request) -> JSONResponse:
    rt, principal, payload, actor = await admin_request(request, LocaleIn)
    user = await _slack_id(rt, payload.user)
    cmd = locale_command.SetLocale(user, payload.locale)
    via = {"via": "api", "source": principal.source}
    before = await run_in_threadpool(locale_command.store_locale, rt.db, cmd, actor, via)
    if rt.locales is not None:  # this replica speaks it at once; others within CHOSEN_TTL
        rt.locales.forget(user)
    return JSONResponse({"user": user, "locale": payload.locale, "before": before})


routes = [
    Route("/api/v1/people/erase", erase, methods=["POST"]),
    Route("/api/v1/people/locale", set_locale, methods=["PUT"]),
]
